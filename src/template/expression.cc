#include "template/expression.h"

#include <cctype>

namespace dspool::arm {

StringForm ClassifyString(std::string_view s) {
  if (s.size() < 2 || s.front() != '[' || s.back() != ']') return StringForm::kLiteral;
  if (s[1] == '[') return StringForm::kEscaped;
  return StringForm::kExpression;
}

namespace {

// Expressions nest (calls within calls); deeper than this is refused
// rather than risking the stack.
constexpr int kMaxDepth = 100;

bool IsNameStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == '$'; }
bool IsNameChar(char c) { return IsNameStart(c) || std::isdigit(static_cast<unsigned char>(c)); }

class ExpressionParser {
 public:
  explicit ExpressionParser(std::string_view text) : text_(text) {}

  Result<std::unique_ptr<Expr>> Parse() {
    if (text_.size() > kMaxExpressionLength) {
      return InvalidArgument("the expression is " + std::to_string(text_.size()) + " characters long; at most " +
                             std::to_string(kMaxExpressionLength) + " are allowed");
    }
    SkipSpace();
    if (pos_ == text_.size()) return InvalidArgument("the expression is empty");
    DSP_ASSIGN_OR_RETURN(auto e, ParseExpr(0));
    SkipSpace();
    if (pos_ != text_.size()) return Error("unexpected text after the expression");
    return e;
  }

 private:
  Status Error(const std::string& what) const {
    return InvalidArgument("the expression is not valid at position " + std::to_string(pos_ + 1) + ": " + what);
  }

  void SkipSpace() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\r' || text_[pos_] == '\n')) {
      ++pos_;
    }
  }

  std::string Name() {
    size_t start = pos_;
    while (pos_ < text_.size() && IsNameChar(text_[pos_])) ++pos_;
    return std::string(text_.substr(start, pos_ - start));
  }

  Result<std::unique_ptr<Expr>> ParseExpr(int depth) {
    if (depth > kMaxDepth) return Error("nested deeper than " + std::to_string(kMaxDepth) + " levels");
    DSP_ASSIGN_OR_RETURN(auto e, ParsePrimary(depth));
    while (pos_ < text_.size()) {
      if (text_[pos_] == '.') {
        auto member = std::make_unique<Expr>();
        member->kind = Expr::Kind::kMember;
        member->offset = pos_;
        ++pos_;
        if (pos_ >= text_.size() || !IsNameStart(text_[pos_])) return Error("expected a property name after '.'");
        member->text = Name();
        member->args.push_back(std::move(e));
        e = std::move(member);
      } else if (text_[pos_] == '[') {
        auto index = std::make_unique<Expr>();
        index->kind = Expr::Kind::kIndex;
        index->offset = pos_;
        ++pos_;
        SkipSpace();
        DSP_ASSIGN_OR_RETURN(auto key, ParseExpr(depth + 1));
        SkipSpace();
        if (pos_ >= text_.size() || text_[pos_] != ']') return Error("expected ']'");
        ++pos_;
        index->args.push_back(std::move(e));
        index->args.push_back(std::move(key));
        e = std::move(index);
      } else {
        break;
      }
    }
    return e;
  }

  Result<std::unique_ptr<Expr>> ParsePrimary(int depth) {
    if (pos_ >= text_.size()) return Error("unexpected end of the expression");
    auto e = std::make_unique<Expr>();
    e->offset = pos_;
    char c = text_[pos_];
    if (c == '\'') {
      e->kind = Expr::Kind::kString;
      ++pos_;
      while (true) {
        if (pos_ >= text_.size()) return Error("a string that is never closed");
        if (text_[pos_] == '\'') {
          if (pos_ + 1 < text_.size() && text_[pos_ + 1] == '\'') {
            e->text += '\'';
            pos_ += 2;
            continue;
          }
          ++pos_;
          return e;
        }
        e->text += text_[pos_++];
      }
    }
    if (c == '-' || std::isdigit(static_cast<unsigned char>(c))) {
      e->kind = Expr::Kind::kInteger;
      size_t start = pos_;
      if (c == '-') ++pos_;
      if (pos_ >= text_.size() || !std::isdigit(static_cast<unsigned char>(text_[pos_]))) return Error("expected a digit");
      while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) ++pos_;
      if (pos_ < text_.size() && text_[pos_] == '.') {
        return Error("numbers have no fraction in expressions; write json('" +
                     std::string(text_.substr(start, pos_ - start)) + ".…')");
      }
      std::string digits(text_.substr(start, pos_ - start));
      try {
        e->integer = std::stoll(digits);
      } catch (...) {
        pos_ = start;
        return Error("the integer " + digits + " does not fit in 64 bits");
      }
      return e;
    }
    if (!IsNameStart(c)) return Error(std::string("unexpected character '") + c + "'");
    e->kind = Expr::Kind::kCall;
    e->text = Name();
    if (pos_ < text_.size() && text_[pos_] == '.' && pos_ + 1 < text_.size() && IsNameStart(text_[pos_ + 1])) {
      // "ns.f(": a user-defined function; "x.y" without a call is not a primary.
      size_t save = pos_;
      ++pos_;
      std::string member = Name();
      SkipSpace();
      if (pos_ < text_.size() && text_[pos_] == '(') {
        e->space = std::move(e->text);
        e->text = std::move(member);
      } else {
        pos_ = save;
      }
    }
    SkipSpace();
    if (pos_ >= text_.size() || text_[pos_] != '(') {
      return Error("expected '(' after the function name '" + e->text +
                   "' (there are no keywords: write true(), false() or null())");
    }
    ++pos_;
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == ')') {
      ++pos_;
      return e;
    }
    while (true) {
      SkipSpace();
      DSP_ASSIGN_OR_RETURN(auto arg, ParseExpr(depth + 1));
      e->args.push_back(std::move(arg));
      SkipSpace();
      if (pos_ >= text_.size()) return Error("expected ',' or ')'");
      if (text_[pos_] == ')') {
        ++pos_;
        return e;
      }
      if (text_[pos_] != ',') return Error("expected ',' or ')'");
      ++pos_;
    }
  }

  std::string_view text_;
  size_t pos_ = 0;
};

}  // namespace

Result<std::unique_ptr<Expr>> ParseExpression(std::string_view text) { return ExpressionParser(text).Parse(); }

}  // namespace dspool::arm
