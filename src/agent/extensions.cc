#include "agent/extensions.h"

#include <signal.h>
#include <sys/wait.h>

#include "base/log.h"
#include "base/strings.h"
#include "os/children.h"
#include "os/fs.h"

namespace dspool {
namespace {

constexpr const char* kLog = "extensions";
// Of each of stdout and stderr, in a status's message.
constexpr size_t kTailBytes = 3000;

// CRLF line ends and a leading UTF-8 byte-order mark out, as CustomScript
// does for scripts unless skipDos2Unix.
std::string Dos2Unix(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  size_t start = text.rfind("\xef\xbb\xbf", 0) == 0 ? 3 : 0;
  for (size_t i = start; i < text.size(); ++i) {
    if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') continue;
    out += text[i];
  }
  return out;
}

std::string Tail(const std::string& path) {
  std::string text = ReadFile(path).value_or("");
  if (text.size() > kTailBytes) text = "..." + text.substr(text.size() - kTailBytes);
  return text;
}

// What identifies a run: a changed timestamp runs the script again.
std::string RunKey(const ExtensionSpec& spec) {
  return spec.publisher + "." + spec.type + " " + std::to_string(spec.timestamp);
}

constexpr const char* kCloudInit = "cloud-init";

// customData as the runner runs it: a script file in cloud-init's place,
// which the command runs (by its #! line).
AgentExtension CustomDataStep(const std::string& base64) {
  AgentExtension e;
  e.spec.name = kCustomDataName;
  e.spec.publisher = kCloudInit;
  e.spec.skip_dos2unix = true;  // cloud-init runs it as it is
  e.spec.settings.command = "exec ./part-001";
  e.files.push_back({"part-001", Base64Decode(base64).value_or("")});
  return e;
}

}  // namespace

ExtensionRunner::ExtensionRunner(std::string var_lib, Duration timeout)
    : var_lib_(std::move(var_lib)), timeout_(timeout) {}

std::string ExtensionRunner::DownloadDir(const ExtensionSpec& spec) const {
  if (spec.publisher == kCloudInit) return var_lib_ + "/cloud/instance/scripts";
  if (spec.publisher == kCustomScriptForLinuxPublisher) {
    return var_lib_ + "/waagent/" + spec.publisher + "." + spec.type + "-" + spec.type_handler_version + "/download/0";
  }
  return var_lib_ + "/waagent/custom-script/download/0";
}

std::string ExtensionRunner::StateFile(const ExtensionSpec& spec) const {
  return StateDir() + "/" + spec.name + ".succeeded";
}

void ExtensionRunner::Load(AgentProvisioning provisioning) {
  if (loaded_) return;
  loaded_ = true;
  std::vector<AgentExtension> extensions;
  if (!provisioning.custom_data.empty()) extensions.push_back(CustomDataStep(provisioning.custom_data));
  for (AgentExtension& e : provisioning.extensions) extensions.push_back(std::move(e));
  for (AgentExtension& e : extensions) {
    Entry entry{std::move(e), {}, true};
    entry.status.name = entry.extension.spec.name;
    if (ReadFile(StateFile(entry.extension.spec)).value_or("") == RunKey(entry.extension.spec)) {
      entry.waiting = false;
      entry.status.state = ExtensionState::kSucceeded;
      entry.status.message = Message(entry, "Enable succeeded (before this start of the instance)");
    }
    entries_.push_back(std::move(entry));
  }
}

void ExtensionRunner::Step(MonoTime now) {
  if (running_) {
    if (now >= running_->deadline) {
      // Its own process group: the script and everything it started.
      SignalProcessGroup(running_->pid, SIGKILL).IgnoreError();  // gone already: OnExit comes
      running_->deadline = MonoTime::max();  // OnExit reports it
    }
    return;
  }
  for (size_t i = 0; i < entries_.size(); ++i) {
    Entry& e = entries_[i];
    // After a failure nothing more runs: a later script may need what the
    // failed one did, and the instance fails anyway.
    if (e.status.state == ExtensionState::kFailed) return;
    if (!e.waiting) continue;
    e.waiting = false;
    if (Status s = Start(i, now); !s.ok()) {
      Finish(e, ExtensionState::kFailed, "Enable failed: " + s.message());
    }
    return;
  }
}

Status ExtensionRunner::Start(size_t index, MonoTime now) {
  Entry& entry = entries_[index];
  const ExtensionSpec& spec = entry.extension.spec;
  const std::string dir = DownloadDir(spec);
  DSP_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  DSP_RETURN_IF_ERROR(MakeDirs(StateDir(), 0700));
  for (const ExtensionFile& f : entry.extension.files) {
    const bool script = f.name.size() > 3 && f.name.compare(f.name.size() - 3, 3, ".sh") == 0;
    const std::string data = script && !spec.skip_dos2unix ? Dos2Unix(f.data) : f.data;
    DSP_RETURN_IF_ERROR(WriteFileAtomic(dir + "/" + f.name, data, 0700));
  }
  std::string command = spec.CommandText();
  if (!spec.skip_dos2unix) command = Dos2Unix(command);
  const std::string command_file = StateDir() + "/" + spec.name + ".command";
  DSP_RETURN_IF_ERROR(WriteFileAtomic(command_file, command + "\n", 0700));
  RemoveTree(StateFile(spec)).IgnoreError();
  SpawnOptions o;
  // The shell's own redirections: stdout and stderr apart, as Azure keeps them.
  o.argv = {"/bin/sh", "-c", "exec /bin/sh \"$0\" >stdout 2>stderr", command_file};
  o.env = std::vector<std::string>{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root",
                                   "LANG=C.UTF-8"};
  o.cwd = dir;
  o.log_path = StateDir() + "/" + spec.name + ".log";  // the shell's own complaints
  o.truncate_log = true;
  DSP_ASSIGN_OR_RETURN(pid_t pid, Spawn(o));
  running_ = Running{index, pid, now + timeout_};
  entry.status.state = ExtensionState::kTransitioning;
  entry.status.message = "Enable in progress";
  DSP_LOG(kInfo, kLog) << "extension " << spec.name << " started in " << dir << " (pid " << pid << ")";
  return Status::Ok();
}

bool ExtensionRunner::OnExit(pid_t pid, int wait_status) {
  if (!running_ || running_->pid != pid) return false;
  Entry& e = entries_[running_->index];
  const bool timed_out = running_->deadline == MonoTime::max();
  running_.reset();
  if (WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0 && !timed_out) {
    Status s = WriteFileAtomic(StateFile(e.extension.spec), RunKey(e.extension.spec), 0600);
    if (!s.ok()) DSP_LOG(kWarning, kLog) << "extension " << e.status.name << ": " << s;
    Finish(e, ExtensionState::kSucceeded, Message(e, "Enable succeeded"));
    return true;
  }
  std::string why;
  if (timed_out) {
    why = "the script ran longer than " +
          std::to_string(std::chrono::duration_cast<std::chrono::minutes>(timeout_).count()) + " minutes and was killed";
  } else if (WIFEXITED(wait_status)) {
    why = "command terminated with exit status=" + std::to_string(WEXITSTATUS(wait_status));
  } else {
    why = "command terminated by signal " + std::to_string(WTERMSIG(wait_status));
  }
  const std::string shell = Tail(StateDir() + "/" + e.status.name + ".log");
  Finish(e, ExtensionState::kFailed,
         Message(e, "Enable failed: failed to execute command: " + why + (shell.empty() ? "" : ": " + shell)));
  return true;
}

void ExtensionRunner::Finish(Entry& entry, ExtensionState state, const std::string& message) {
  entry.status.state = state;
  entry.status.message = message.substr(0, kMaxExtensionMessage);
  // The first line only: the output's tails are the script's to show.
  const std::string outcome = message.substr(0, message.find('\n'));
  if (state == ExtensionState::kSucceeded) {
    DSP_LOG(kInfo, kLog) << "extension " << entry.status.name << ": " << outcome;
  } else {
    DSP_LOG(kWarning, kLog) << "extension " << entry.status.name << ": " << outcome;
  }
}

std::string ExtensionRunner::Message(const Entry& entry, const std::string& outcome) const {
  const std::string dir = DownloadDir(entry.extension.spec);
  return outcome + "\n[stdout]\n" + Tail(dir + "/stdout") + "\n[stderr]\n" + Tail(dir + "/stderr");
}

std::vector<ExtensionStatus> ExtensionRunner::Statuses() const {
  std::vector<ExtensionStatus> out;
  for (const Entry& e : entries_) out.push_back(e.status);
  return out;
}

bool ExtensionRunner::Finished() const {
  if (!loaded_ || running_) return false;
  for (const Entry& e : entries_) {
    if (e.status.state == ExtensionState::kFailed) return true;
    if (e.waiting) return false;
  }
  return true;
}

}  // namespace dspool
