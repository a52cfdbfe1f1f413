#include "os/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/fib_rules.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <optional>
#include <functional>
#include <map>
#include <span>
#include <string_view>

#include "os/fs.h"
#include "os/unique_fd.h"

namespace dspool {
namespace {

using Bytes = std::span<const uint8_t>;

constexpr size_t Align4(size_t n) { return (n + 3) & ~size_t{3}; }

template <typename T>
T Load(Bytes b, size_t offset = 0) {
  T v;
  std::memcpy(&v, b.data() + offset, sizeof(T));
  return v;
}

// One rtnetlink request under construction: nlmsghdr, the family header,
// then attributes. Builds into a byte buffer with memcpy, so there are no
// alignment or aliasing tricks.
class Request {
 public:
  template <typename FamilyHeader>
  Request(uint16_t type, uint16_t flags, const FamilyHeader& header) {
    struct nlmsghdr nlh = {};
    nlh.nlmsg_type = type;
    nlh.nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | flags);
    Append(&nlh, sizeof(nlh));
    Append(&header, sizeof(header));
  }

  void AddAttr(uint16_t type, const void* data, size_t len) {
    struct rtattr rta;
    rta.rta_type = type;
    rta.rta_len = static_cast<uint16_t>(sizeof(rta) + len);
    Append(&rta, sizeof(rta));
    Append(data, len);
  }
  void AddString(uint16_t type, const std::string& s) { AddAttr(type, s.c_str(), s.size() + 1); }
  void AddU32(uint16_t type, uint32_t v) { AddAttr(type, &v, sizeof(v)); }

  // Attributes added until EndNested(returned value) are nested in `type`.
  size_t BeginNested(uint16_t type) {
    size_t at = buf_.size();
    AddAttr(type, nullptr, 0);
    return at;
  }
  void EndNested(size_t at) {
    uint16_t len = static_cast<uint16_t>(buf_.size() - at);
    std::memcpy(buf_.data() + at + offsetof(struct rtattr, rta_len), &len, sizeof(len));
  }

  // The finished message with `seq` filled in.
  const std::vector<uint8_t>& Finish(uint32_t seq) {
    uint32_t len = static_cast<uint32_t>(buf_.size());
    std::memcpy(buf_.data() + offsetof(struct nlmsghdr, nlmsg_len), &len, sizeof(len));
    std::memcpy(buf_.data() + offsetof(struct nlmsghdr, nlmsg_seq), &seq, sizeof(seq));
    return buf_;
  }

  bool is_dump() const {
    uint16_t flags;
    std::memcpy(&flags, buf_.data() + offsetof(struct nlmsghdr, nlmsg_flags), sizeof(flags));
    return (flags & NLM_F_DUMP) == NLM_F_DUMP;
  }

 private:
  void Append(const void* data, size_t len) {
    const uint8_t* p = static_cast<const uint8_t*>(data);
    if (len > 0) buf_.insert(buf_.end(), p, p + len);
    buf_.resize(Align4(buf_.size()), 0);
  }

  std::vector<uint8_t> buf_;
};

// A received message: its header and everything after it.
struct Message {
  struct nlmsghdr header;
  std::vector<uint8_t> payload;
};

// Calls fn(type, data) for each attribute in `attrs`; stops at the first
// malformed one.
void ForEachAttr(Bytes attrs, const std::function<void(uint16_t, Bytes)>& fn) {
  size_t off = 0;
  while (off + sizeof(struct rtattr) <= attrs.size()) {
    auto rta = Load<struct rtattr>(attrs, off);
    if (rta.rta_len < sizeof(struct rtattr) || off + rta.rta_len > attrs.size()) return;
    fn(static_cast<uint16_t>(rta.rta_type & NLA_TYPE_MASK),
       attrs.subspan(off + sizeof(struct rtattr), rta.rta_len - sizeof(struct rtattr)));
    off += Align4(rta.rta_len);
  }
}

std::string AttrString(Bytes data) {
  std::string_view s(reinterpret_cast<const char*>(data.data()), data.size());
  return std::string(s.substr(0, s.find('\0')));
}

// Maps a kernel error to a Status: "<what>: <strerror>[: <extended ack>]".
Status KernelError(const std::string& what, int err, const std::string& ext_ack) {
  Status s = err == ENODEV ? NotFound(what + ": no such link") : ErrnoStatus(what, err);
  if (!ext_ack.empty()) s = Status(s.code(), s.message() + " (" + ext_ack + ")");
  return s;
}

class Socket {
 public:
  static Result<Socket> Open() {
    Socket s;
    s.fd_.reset(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
    if (!s.fd_.valid()) return ErrnoStatus("netlink socket", errno);
    int one = 1;
    // Both best effort: the error text and the shorter acks are conveniences.
    ::setsockopt(s.fd_.get(), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
    ::setsockopt(s.fd_.get(), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
    // The kernel always answers; the timeout only turns a bug into an error.
    struct timeval tv = {30, 0};
    ::setsockopt(s.fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_nl addr = {};
    addr.nl_family = AF_NETLINK;
    if (::bind(s.fd_.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) != 0) {
      return ErrnoStatus("netlink bind", errno);
    }
    socklen_t len = sizeof(addr);
    if (::getsockname(s.fd_.get(), reinterpret_cast<struct sockaddr*>(&addr), &len) != 0) {
      return ErrnoStatus("netlink getsockname", errno);
    }
    s.port_id_ = addr.nl_pid;
    s.seq_ = static_cast<uint32_t>(::time(nullptr));
    return s;
  }

  // Sends `req` and collects the kernel's answer. For a dump request
  // (NLM_F_DUMP), returns every message up to NLMSG_DONE, restarting the dump
  // if the kernel reports it was interrupted by a concurrent change. For any
  // other request, asks for an ack and returns the messages before it.
  // `what` names the operation in errors.
  Result<std::vector<Message>> Call(Request& req, const std::string& what) {
    constexpr int kDumpAttempts = 5;
    for (int attempt = 0;; ++attempt) {
      bool interrupted = false;
      DSP_ASSIGN_OR_RETURN(std::vector<Message> messages, CallOnce(req, what, &interrupted));
      if (!interrupted) return messages;
      if (attempt + 1 == kDumpAttempts) return Aborted(what + ": dump kept changing underneath; try again");
    }
  }

 private:
  Result<std::vector<Message>> CallOnce(Request& req, const std::string& what, bool* interrupted) {
    const bool dump = req.is_dump();
    const uint32_t seq = ++seq_;
    const std::vector<uint8_t>& bytes = req.Finish(seq);
    struct sockaddr_nl kernel = {};
    kernel.nl_family = AF_NETLINK;
    for (;;) {
      ssize_t n = ::sendto(fd_.get(), bytes.data(), bytes.size(), 0, reinterpret_cast<struct sockaddr*>(&kernel),
                           sizeof(kernel));
      if (n >= 0) break;
      if (errno != EINTR) return ErrnoStatus(what + ": netlink send", errno);
    }

    std::vector<Message> out;
    std::vector<uint8_t> buf;
    for (;;) {
      DSP_RETURN_IF_ERROR(Receive(buf, what));
      Bytes data(buf);
      size_t off = 0;
      while (off + sizeof(struct nlmsghdr) <= data.size()) {
        auto h = Load<struct nlmsghdr>(data, off);
        if (h.nlmsg_len < sizeof(struct nlmsghdr) || off + h.nlmsg_len > data.size()) {
          return Internal(what + ": malformed netlink message from the kernel");
        }
        Bytes payload = data.subspan(off + sizeof(struct nlmsghdr), h.nlmsg_len - sizeof(struct nlmsghdr));
        off += Align4(h.nlmsg_len);
        if (h.nlmsg_seq != seq || h.nlmsg_pid != port_id_) continue;  // not an answer to this request
        if (h.nlmsg_flags & NLM_F_DUMP_INTR) *interrupted = true;
        if (h.nlmsg_type == NLMSG_ERROR) {
          if (payload.size() < sizeof(struct nlmsgerr)) return Internal(what + ": short netlink error message");
          auto e = Load<struct nlmsgerr>(payload);
          if (e.error == 0) return out;  // the ack
          return KernelError(what, -e.error, ExtAckMessage(h, e, payload));
        }
        if (h.nlmsg_type == NLMSG_DONE) {
          if (payload.size() >= sizeof(int)) {
            int err = Load<int>(payload);
            if (err < 0) return KernelError(what, -err, "");
          }
          if (dump) return out;
          continue;
        }
        if (h.nlmsg_type == NLMSG_NOOP) continue;
        out.push_back(Message{h, std::vector<uint8_t>(payload.begin(), payload.end())});
      }
    }
  }

  // Receives one datagram, sized to fit (peeked first so nothing is cut).
  Status Receive(std::vector<uint8_t>& buf, const std::string& what) {
    for (;;) {
      ssize_t size = ::recv(fd_.get(), nullptr, 0, MSG_PEEK | MSG_TRUNC);
      if (size < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return DeadlineExceeded(what + ": no answer from the kernel");
        return ErrnoStatus(what + ": netlink receive", errno);
      }
      buf.resize(static_cast<size_t>(size));
      struct sockaddr_nl from = {};
      socklen_t from_len = sizeof(from);
      ssize_t n =
          ::recvfrom(fd_.get(), buf.data(), buf.size(), 0, reinterpret_cast<struct sockaddr*>(&from), &from_len);
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus(what + ": netlink receive", errno);
      }
      if (from.nl_pid != 0) continue;  // only the kernel may answer
      buf.resize(static_cast<size_t>(n));
      return Status::Ok();
    }
  }

  // The NLMSGERR_ATTR_MSG text of an error, if the kernel attached one.
  static std::string ExtAckMessage(const struct nlmsghdr& h, const struct nlmsgerr& e, Bytes payload) {
    if (!(h.nlmsg_flags & NLM_F_ACK_TLVS)) return "";
    size_t tlv_off = sizeof(struct nlmsgerr);
    if (!(h.nlmsg_flags & NLM_F_CAPPED)) {
      if (e.msg.nlmsg_len < sizeof(struct nlmsghdr)) return "";
      tlv_off += Align4(e.msg.nlmsg_len - sizeof(struct nlmsghdr));
    }
    if (tlv_off > payload.size()) return "";
    std::string text;
    ForEachAttr(payload.subspan(tlv_off), [&](uint16_t type, Bytes data) {
      if (type == NLMSGERR_ATTR_MSG) text = AttrString(data);
    });
    return text;
  }

  UniqueFd fd_;
  uint32_t port_id_ = 0;
  uint32_t seq_ = 0;
};

Status ValidateLinkName(const std::string& name) {
  bool ok = !name.empty() && name.size() < IFNAMSIZ && name != "." && name != ".." &&
            std::none_of(name.begin(), name.end(), [](char c) {
              return c == '/' || c == ':' || c == '\0' || static_cast<unsigned char>(c) <= ' ' || c == 0x7f;
            });
  if (!ok) {
    return InvalidArgument("'" + name + "' is not a valid link name: use 1 to " + std::to_string(IFNAMSIZ - 1) +
                           " characters without '/', ':' or whitespace");
  }
  return Status::Ok();
}

struct LinkInfo {
  int index = 0;
  std::string name;
  int master = 0;  // index of the master (bridge) link, 0 if none
};

LinkInfo ParseLink(const Message& m) {
  LinkInfo info;
  Bytes payload(m.payload);
  if (payload.size() < sizeof(struct ifinfomsg)) return info;
  info.index = Load<struct ifinfomsg>(payload).ifi_index;
  ForEachAttr(payload.subspan(NLMSG_ALIGN(sizeof(struct ifinfomsg))), [&](uint16_t type, Bytes data) {
    if (type == IFLA_IFNAME) info.name = AttrString(data);
    if (type == IFLA_MASTER && data.size() >= 4) info.master = static_cast<int>(Load<uint32_t>(data));
  });
  return info;
}

Result<std::vector<LinkInfo>> DumpLinks(Socket& sock) {
  struct ifinfomsg ifi = {};
  ifi.ifi_family = AF_UNSPEC;
  Request req(RTM_GETLINK, NLM_F_DUMP, ifi);
  req.AddU32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  DSP_ASSIGN_OR_RETURN(std::vector<Message> messages, sock.Call(req, "list links"));
  std::vector<LinkInfo> links;
  for (const Message& m : messages) {
    if (m.header.nlmsg_type != RTM_NEWLINK) continue;
    LinkInfo info = ParseLink(m);
    if (info.index > 0 && !info.name.empty()) links.push_back(std::move(info));
  }
  std::sort(links.begin(), links.end(), [](const LinkInfo& a, const LinkInfo& b) { return a.index < b.index; });
  return links;
}

// The index of link `name`; NotFound if there is none.
Result<int> LinkIndex(Socket& sock, const std::string& name) {
  struct ifinfomsg ifi = {};
  ifi.ifi_family = AF_UNSPEC;
  Request req(RTM_GETLINK, NLM_F_ACK, ifi);
  req.AddString(IFLA_IFNAME, name);
  req.AddU32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  DSP_ASSIGN_OR_RETURN(std::vector<Message> messages, sock.Call(req, "link " + name));
  for (const Message& m : messages) {
    if (m.header.nlmsg_type != RTM_NEWLINK) continue;
    LinkInfo info = ParseLink(m);
    if (info.index > 0) return info.index;
  }
  return Internal("link " + name + ": the kernel answered without the link");
}

}  // namespace

Result<std::vector<RouteEntry>> ListIpv4Routes() {
  DSP_ASSIGN_OR_RETURN(Socket sock, Socket::Open());
  DSP_ASSIGN_OR_RETURN(std::vector<LinkInfo> links, DumpLinks(sock));
  std::map<int, std::string> names;
  for (LinkInfo& l : links) names[l.index] = std::move(l.name);

  struct rtmsg rtm = {};
  rtm.rtm_family = AF_INET;
  Request req(RTM_GETROUTE, NLM_F_DUMP, rtm);
  DSP_ASSIGN_OR_RETURN(std::vector<Message> messages, sock.Call(req, "list IPv4 routes"));
  std::vector<RouteEntry> routes;
  for (const Message& m : messages) {
    if (m.header.nlmsg_type != RTM_NEWROUTE) continue;
    Bytes payload(m.payload);
    if (payload.size() < sizeof(struct rtmsg)) continue;
    auto r = Load<struct rtmsg>(payload);
    if (r.rtm_family != AF_INET || r.rtm_dst_len > 32) continue;
    uint32_t table = r.rtm_table;
    uint32_t dst_be = 0;
    int oif = 0;
    ForEachAttr(payload.subspan(NLMSG_ALIGN(sizeof(struct rtmsg))), [&](uint16_t type, Bytes data) {
      if (type == RTA_TABLE && data.size() >= 4) table = Load<uint32_t>(data);
      if (type == RTA_DST && data.size() >= 4) dst_be = Load<uint32_t>(data);
      if (type == RTA_OIF && data.size() >= 4) oif = static_cast<int>(Load<uint32_t>(data));
      if (type == RTA_MULTIPATH && oif == 0 && data.size() >= sizeof(struct rtnexthop)) {
        oif = Load<struct rtnexthop>(data).rtnh_ifindex;
      }
    });
    if (table != RT_TABLE_MAIN) continue;
    RouteEntry e;
    e.destination.prefix = r.rtm_dst_len;
    e.destination.network = ntohl(dst_be) & e.destination.Mask();
    if (auto it = names.find(oif); it != names.end()) e.interface = it->second;
    routes.push_back(std::move(e));
  }
  return routes;
}

Result<std::vector<std::string>> ListLinks() {
  DSP_ASSIGN_OR_RETURN(Socket sock, Socket::Open());
  DSP_ASSIGN_OR_RETURN(std::vector<LinkInfo> links, DumpLinks(sock));
  std::vector<std::string> names;
  for (LinkInfo& l : links) names.push_back(std::move(l.name));
  return names;
}

Result<bool> LinkExists(const std::string& name) {
  DSP_RETURN_IF_ERROR(ValidateLinkName(name));
  DSP_ASSIGN_OR_RETURN(Socket sock, Socket::Open());
  Result<int> index = LinkIndex(sock, name);
  if (index.ok()) return true;
  if (index.status().code() == StatusCode::kNotFound) return false;
  return index.status();
}

Status CreateBridge(const std::string& name) {
  DSP_RETURN_IF_ERROR(ValidateLinkName(name));
  DSP_ASSIGN_OR_RETURN(Socket sock, Socket::Open());
  struct ifinfomsg ifi = {};
  ifi.ifi_family = AF_UNSPEC;
  Request req(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, ifi);
  req.AddString(IFLA_IFNAME, name);
  size_t linkinfo = req.BeginNested(IFLA_LINKINFO);
  req.AddAttr(IFLA_INFO_KIND, "bridge", 6);
  req.EndNested(linkinfo);
  Result<std::vector<Message>> r = sock.Call(req, "create bridge " + name);
  if (!r.ok() && r.status().code() == StatusCode::kAlreadyExists) {
    return AlreadyExists("create bridge " + name + ": a link with this name already exists");
  }
  return r.status();
}

Status SetBridgeNetfilter(const std::string& bridge, bool on) {
  DSP_RETURN_IF_ERROR(ValidateLinkName(bridge));
  DSP_ASSIGN_OR_RETURN(Socket sock, Socket::Open());
  struct ifinfomsg ifi = {};
  ifi.ifi_family = AF_UNSPEC;
  Request req(RTM_NEWLINK, NLM_F_ACK, ifi);
  req.AddString(IFLA_IFNAME, bridge);
  size_t linkinfo = req.BeginNested(IFLA_LINKINFO);
  req.AddAttr(IFLA_INFO_KIND, "bridge", 6);
  size_t data = req.BeginNested(IFLA_INFO_DATA);
  const uint8_t value = on ? 1 : 0;
  req.AddAttr(IFLA_BR_NF_CALL_IPTABLES, &value, 1);
  req.AddAttr(IFLA_BR_NF_CALL_IP6TABLES, &value, 1);
  req.EndNested(data);
  req.EndNested(linkinfo);
  Status s = sock.Call(req, "pass " + bridge + "'s frames through netfilter").status();
  if (s.code() == StatusCode::kInvalidArgument) {
    return FailedPrecondition(s.message() + " (the kernel needs br_netfilter)");
  }
  return s;
}

Status SetLinkUp(const std::string& name) {
  DSP_RETURN_IF_ERROR(ValidateLinkName(name));
  DSP_ASSIGN_OR_RETURN(Socket sock, Socket::Open());
  struct ifinfomsg ifi = {};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_flags = IFF_UP;
  ifi.ifi_change = IFF_UP;
  Request req(RTM_NEWLINK, NLM_F_ACK, ifi);
  req.AddString(IFLA_IFNAME, name);  // with ifi_index 0, the kernel finds the link by name
  return sock.Call(req, "set link " + name + " up").status();
}

Status AddIpv4Address(const std::string& name, uint32_t addr, int prefix) {
  DSP_RETURN_IF_ERROR(ValidateLinkName(name));
  std::string what = "add address " + FormatIpv4(addr) + "/" + std::to_string(prefix) + " to " + name;
  if (prefix < 1 || prefix > 32) return InvalidArgument(what + ": prefix must be 1..32");
  DSP_ASSIGN_OR_RETURN(Socket sock, Socket::Open());
  DSP_ASSIGN_OR_RETURN(int index, LinkIndex(sock, name));
  struct ifaddrmsg ifa = {};
  ifa.ifa_family = AF_INET;
  ifa.ifa_prefixlen = static_cast<uint8_t>(prefix);
  ifa.ifa_scope = RT_SCOPE_UNIVERSE;
  ifa.ifa_index = static_cast<uint32_t>(index);
  Request req(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, ifa);
  uint32_t addr_be = htonl(addr);
  req.AddAttr(IFA_LOCAL, &addr_be, 4);
  req.AddAttr(IFA_ADDRESS, &addr_be, 4);
  if (prefix <= 30) {
    uint32_t mask = ~uint32_t{0} << (32 - prefix);
    uint32_t broadcast_be = htonl(addr | ~mask);
    req.AddAttr(IFA_BROADCAST, &broadcast_be, 4);
  }
  Result<std::vector<Message>> r = sock.Call(req, what);
  if (!r.ok() && r.status().code() == StatusCode::kAlreadyExists) return Status::Ok();
  return r.status();
}

Status DeleteLink(const std::string& name) {
  DSP_RETURN_IF_ERROR(ValidateLinkName(name));
  DSP_ASSIGN_OR_RETURN(Socket sock, Socket::Open());
  struct ifinfomsg ifi = {};
  ifi.ifi_family = AF_UNSPEC;
  Request req(RTM_DELLINK, NLM_F_ACK, ifi);
  req.AddString(IFLA_IFNAME, name);
  return sock.Call(req, "delete link " + name).status();
}

Status SetLinkMaster(const std::string& name, const std::string& bridge) {
  DSP_RETURN_IF_ERROR(ValidateLinkName(name));
  DSP_RETURN_IF_ERROR(ValidateLinkName(bridge));
  DSP_ASSIGN_OR_RETURN(Socket sock, Socket::Open());
  DSP_ASSIGN_OR_RETURN(int master, LinkIndex(sock, bridge));
  struct ifinfomsg ifi = {};
  ifi.ifi_family = AF_UNSPEC;
  Request req(RTM_NEWLINK, NLM_F_ACK, ifi);
  req.AddString(IFLA_IFNAME, name);
  uint32_t master_index = static_cast<uint32_t>(master);
  req.AddAttr(IFLA_MASTER, &master_index, 4);
  return sock.Call(req, "attach " + name + " to " + bridge).status();
}

Result<std::vector<std::string>> ListBridgePorts(const std::string& bridge) {
  DSP_RETURN_IF_ERROR(ValidateLinkName(bridge));
  DSP_ASSIGN_OR_RETURN(Socket sock, Socket::Open());
  DSP_ASSIGN_OR_RETURN(int index, LinkIndex(sock, bridge));
  DSP_ASSIGN_OR_RETURN(std::vector<LinkInfo> links, DumpLinks(sock));
  std::vector<std::string> ports;
  for (LinkInfo& l : links) {
    if (l.master == index) ports.push_back(std::move(l.name));
  }
  return ports;
}

Status EnsureMarkedLocalDelivery(uint32_t mark, uint32_t table, uint32_t priority) {
  const std::string what = "deliver packets marked " + std::to_string(mark) + " locally (table " +
                           std::to_string(table) + ", rule " + std::to_string(priority) + ")";
  if (mark == 0) return InvalidArgument(what + ": the mark must not be 0");
  if (table == 0 || table == RT_TABLE_MAIN || table == RT_TABLE_LOCAL || table == RT_TABLE_DEFAULT ||
      table == RT_TABLE_COMPAT) {
    return InvalidArgument(what + ": the table must be one of its own, not a reserved one");
  }
  if (priority == 0 || priority >= 32766) return InvalidArgument(what + ": the rule must come between 1 and 32765");
  DSP_ASSIGN_OR_RETURN(Socket sock, Socket::Open());
  DSP_ASSIGN_OR_RETURN(int lo, LinkIndex(sock, "lo"));

  // The route first: a rule that points at an empty table sends the
  // marked packets on to the main table, as before.
  struct rtmsg rtm = {};
  rtm.rtm_family = AF_INET;
  rtm.rtm_table = RT_TABLE_UNSPEC;  // RTA_TABLE holds it
  rtm.rtm_protocol = RTPROT_STATIC;
  rtm.rtm_scope = RT_SCOPE_HOST;
  rtm.rtm_type = RTN_LOCAL;
  Request route(RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE, rtm);
  route.AddU32(RTA_TABLE, table);
  route.AddU32(RTA_OIF, static_cast<uint32_t>(lo));
  DSP_RETURN_IF_ERROR(sock.Call(route, what + ": route local 0.0.0.0/0 dev lo").status());

  // The kernel keeps duplicate rules: add ours only if it is not there.
  struct fib_rule_hdr frh = {};
  frh.family = AF_INET;
  Request dump(RTM_GETRULE, NLM_F_DUMP, frh);
  DSP_ASSIGN_OR_RETURN(std::vector<Message> rules, sock.Call(dump, what + ": list rules"));
  for (const Message& m : rules) {
    if (m.header.nlmsg_type != RTM_NEWRULE) continue;
    Bytes payload(m.payload);
    if (payload.size() < sizeof(struct fib_rule_hdr)) continue;
    auto h = Load<struct fib_rule_hdr>(payload);
    if (h.family != AF_INET || h.action != FR_ACT_TO_TBL || h.src_len != 0 || h.dst_len != 0 || h.tos != 0 ||
        (h.flags & FIB_RULE_INVERT)) {
      continue;
    }
    uint32_t rule_table = h.table, rule_priority = 0, rule_mark = 0, rule_mask = 0;
    bool other = false;  // a selector we do not set (iif, tos, ports...)
    ForEachAttr(payload.subspan(NLMSG_ALIGN(sizeof(struct fib_rule_hdr))), [&](uint16_t type, Bytes data) {
      uint32_t v = data.size() >= 4 ? Load<uint32_t>(data) : 0;
      if (type == FRA_TABLE) rule_table = v;
      if (type == FRA_PRIORITY) rule_priority = v;
      if (type == FRA_FWMARK) rule_mark = v;
      if (type == FRA_FWMASK) rule_mask = v;
      other |= type == FRA_IIFNAME || type == FRA_OIFNAME || type == FRA_SRC || type == FRA_DST ||
               type == FRA_SPORT_RANGE || type == FRA_DPORT_RANGE || type == FRA_IP_PROTO;
    });
    if (!other && rule_table == table && rule_priority == priority && rule_mark == mark &&
        rule_mask == 0xffffffffu) {
      return Status::Ok();
    }
  }
  frh.action = FR_ACT_TO_TBL;
  frh.table = RT_TABLE_UNSPEC;  // FRA_TABLE holds it
  Request rule(RTM_NEWRULE, NLM_F_ACK | NLM_F_CREATE, frh);
  rule.AddU32(FRA_TABLE, table);
  rule.AddU32(FRA_PRIORITY, priority);
  rule.AddU32(FRA_FWMARK, mark);
  rule.AddU32(FRA_FWMASK, 0xffffffffu);
  return sock.Call(rule, what + ": rule").status();
}

Result<bool> TcpPortFree(const std::string& address, uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (inet_pton(AF_INET, address.c_str(), &addr.sin_addr) != 1) {
    return InvalidArgument("'" + address + "' is not an IPv4 address");
  }
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return ErrnoStatus("socket", errno);
  int one = 1;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
    return ErrnoStatus("setsockopt SO_REUSEADDR", errno);
  }
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0) return true;
  if (errno == EADDRINUSE) return false;
  return ErrnoStatus("bind " + address + ":" + std::to_string(port), errno);
}

Result<std::set<uint16_t>> ParsePortList(std::string_view text) {
  std::set<uint16_t> ports;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  auto port = [](std::string_view s) -> std::optional<uint16_t> {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc() || end != s.data() + s.size() || s.empty() || value > 65535) return std::nullopt;
    return static_cast<uint16_t>(value);
  };
  for (bool more = !text.empty(); more;) {
    size_t comma = text.find(',');
    std::string_view part = text.substr(0, comma);
    more = comma != std::string_view::npos;
    if (more) text.remove_prefix(comma + 1);
    size_t dash = part.find('-');
    auto first = port(part.substr(0, dash));
    auto last = dash == std::string_view::npos ? first : port(part.substr(dash + 1));
    if (!first || !last || *last < *first) {
      return InvalidArgument("'" + std::string(part) + "' is not a port or a range of ports (\"8000\", \"50000-50099\")");
    }
    for (unsigned p = *first; p <= *last; ++p) ports.insert(static_cast<uint16_t>(p));
  }
  return ports;
}

std::string FormatPortList(const std::set<uint16_t>& ports) {
  std::string out;
  for (auto it = ports.begin(); it != ports.end();) {
    uint16_t first = *it, last = *it;
    for (++it; it != ports.end() && *it == last + 1; ++it) last = *it;
    if (!out.empty()) out += ',';
    out += std::to_string(first);
    if (last != first) out += "-" + std::to_string(last);
  }
  return out;
}

Result<std::set<uint16_t>> ReadReservedPorts(const std::string& path) {
  DSP_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  auto ports = ParsePortList(text);
  if (!ports.ok()) return ports.status().WithPrefix(path);
  return ports;
}

Status WriteReservedPorts(const std::set<uint16_t>& ports, const std::string& path) {
  // Not WriteKernelFile: O_TRUNC, so that the same code keeps a regular
  // file (a test's stand-in for the sysctl) exact when the list shrinks.
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoStatus("open " + path, errno);
  // The kernel takes an empty list as a lone newline.
  std::string text = FormatPortList(ports) + "\n";
  ssize_t n = ::write(fd.get(), text.data(), text.size());
  if (n < 0) return ErrnoStatus("write " + path, errno);
  if (static_cast<size_t>(n) != text.size()) return Internal("write " + path + ": short write");
  return Status::Ok();
}

}  // namespace dspool
