#!/usr/bin/python3
"""Checks the dependency rules of src/ (src/README.md, "Dependency rules").

Compares every module's #includes and CMake links with the "May depend on"
section of its README and with the project-wide rules in src/README.md, and
prints one line per breach: file, line, the include (or link, or README
entry) and the rule. Breaches listed in the baseline file are reported as
known and do not fail the check; a baseline entry that no longer occurs
does, so the baseline can only shrink.

    scripts/check_deps.py [--root DIR] [--baseline FILE]

DIR is a checkout (default: the one holding this script); FILE defaults to
DIR/scripts/deps_baseline.txt (none there: an empty baseline). Exit status:
0 no new breach and no stale baseline entry; 1 otherwise; 2 a README, the
module table or the baseline does not follow its format (nothing checked).
Standard library only; run by CTest as deps.check (label unit).
"""

import argparse
import os
import re
import sys

# Third-party libraries the checker knows: the name a README's "Third-party:"
# line uses -> (the headers that belong to it, its CMake targets).
LIBRARIES = {
    "boost": (("boost/",), ("Boost::",)),
    "cli11": (("CLI/",), ("CLI11::",)),
    "crypt": (("crypt.h",), ("PkgConfig::CRYPT",)),
    "icu": (("unicode/",), ("PkgConfig::ICU",)),
    "ldap": (("ldap.h", "lber.h", "ldap_"), ("PkgConfig::LDAP",)),
    "lxc": (("lxc/",), ("PkgConfig::LXC",)),
    "nlohmann-json": (("nlohmann/",), ("nlohmann_json::",)),
    "openssl": (("openssl/",), ("OpenSSL::",)),
    "sodium": (("sodium.h", "sodium/"), ("PkgConfig::SODIUM",)),
    "sqlite3": (("sqlite3.h", "sqlite3ext.h"), ("SQLite::",)),
}
# GoogleTest and GoogleMock: in tests/ and testing/ folders only; no README lists them.
GTEST = "gtest"
GTEST_HEADERS = ("gtest/", "gmock/")
GTEST_TARGETS = ("GTest::",)
SYSTEM_TARGETS = ("Threads::Threads",)

# Raw Linux interfaces (sockets, event descriptors, mounts and namespaces,
# netlink and the other kernel UAPI headers, raw syscalls, process and file
# attributes the kernel alone defines): only in the modules src/README.md's
# "Raw Linux headers:" line names. Portable POSIX (unistd.h, fcntl.h,
# signal.h, sys/stat.h, sys/wait.h, poll.h, pthread.h ...) is not on this list.
RAW_LINUX = (
    "sys/socket.h", "sys/un.h", "arpa/", "netinet/", "net/", "netpacket/", "netdb.h", "ifaddrs.h",
    "sys/epoll.h", "sys/eventfd.h", "sys/timerfd.h", "sys/signalfd.h", "sys/inotify.h",
    "sys/fanotify.h", "sys/mount.h", "sys/fsuid.h", "sched.h", "sys/syscall.h", "syscall.h",
    "linux/", "asm/", "asm-generic/", "sys/prctl.h", "sys/capability.h", "sys/ptrace.h",
    "sys/xattr.h", "sys/ioctl.h", "sys/sendfile.h", "sys/pidfd.h", "sys/personality.h",
    "sys/quota.h", "sys/vfs.h", "sys/statfs.h",
)
# glibc's and the compiler's own headers (C++ headers have no extension).
SYSTEM_DIRS = ("sys/", "bits/", "gnu/", "scsi/", "rpc/", "protocols/")
SYSTEM_HEADERS = set("""
aio.h aliases.h alloca.h ar.h argp.h argz.h assert.h byteswap.h complex.h cpio.h ctype.h dirent.h
dlfcn.h elf.h endian.h envz.h err.h errno.h error.h execinfo.h fcntl.h features.h fenv.h fmtmsg.h
fnmatch.h fstab.h fts.h ftw.h getopt.h glob.h grp.h gshadow.h iconv.h inttypes.h langinfo.h
libgen.h libintl.h limits.h link.h locale.h malloc.h math.h memory.h mntent.h monetary.h mqueue.h
nl_types.h nss.h obstack.h paths.h poll.h printf.h pthread.h pty.h pwd.h regex.h resolv.h search.h
semaphore.h setjmp.h shadow.h signal.h spawn.h stdint.h stdio.h stdio_ext.h stdlib.h string.h
strings.h sysexits.h syslog.h tar.h termios.h tgmath.h threads.h time.h uchar.h ucontext.h ulimit.h
unistd.h utime.h utmp.h utmpx.h wait.h wchar.h wctype.h wordexp.h
stdarg.h stddef.h stdbool.h float.h iso646.h stdalign.h stdatomic.h stdnoreturn.h cpuid.h
immintrin.h x86intrin.h emmintrin.h
""".split())

TEST_DIRS = ("tests", "testing")
SOURCE_SUFFIXES = (".h", ".cc", ".h.in", ".cc.in")
INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


class FormatError(Exception):
    pass


def rel(root, path):
    return os.path.relpath(path, root).replace(os.sep, "/")


# --- Lists in the READMEs -------------------------------------------------

ITEM_RE = re.compile(r"^`([^`]+)`(?:\s+in\s+`([^`]+)`)?(?:\s*\((.*)\))?$", re.S)


def split_list(text):
    """Splits "`a` (x, y), `b` in `c/`. Prose." into items, up to the first
    period outside backticks and parentheses; the rest is prose."""
    items, current, depth, tick = [], "", 0, False
    for ch in text:
        if ch == "`":
            tick = not tick
        elif not tick and ch == "(":
            depth += 1
        elif not tick and ch == ")":
            depth -= 1
        elif not tick and depth == 0 and ch in ",.":
            items.append(current.strip())
            current = ""
            if ch == ".":
                return items
            continue
        current += ch
    items.append(current.strip())
    return items


def parse_list(text, where, allow_scope):
    """A field's list: [(name, scope or None)]; "none" alone is the empty list."""
    items = split_list(" ".join(text.split()))
    if items == ["none"]:
        return []
    out = []
    for item in items:
        m = ITEM_RE.match(item)
        if not m or (m.group(3) is not None and m.group(3).count("(") != m.group(3).count(")")):
            raise FormatError(f"{where}: '{item}' is not `name`, `name` (note)"
                              + (", `name` in `folder/`" if allow_scope else "")
                              + " or 'none' (items are separated by commas; the list ends at its period)")
        if m.group(2) and not allow_scope:
            raise FormatError(f"{where}: '{item}': 'in `folder/`' is for third-party libraries only")
        out.append((m.group(1), m.group(2)))
    return out


def read_fields(lines, first, labels, where):
    """The paragraph from lines[first]: {label: (text, line number)}. Each
    field starts a line with "Label:" and runs to the next field or the end
    of the paragraph."""
    fields, label, i = {}, None, first
    while i < len(lines) and lines[i].strip():
        line = lines[i].strip()
        m = re.match(r"^([A-Za-z -]+):\s*(.*)$", line)
        if m and m.group(1) in labels:
            label = m.group(1)
            if label in fields:
                raise FormatError(f"{where}:{i + 1}: a second '{label}:' line")
            fields[label] = [m.group(2), i + 1]
        elif label is None:
            raise FormatError(f"{where}:{i + 1}: expected a line starting with "
                              + " or ".join(f"'{x}:'" for x in labels))
        else:
            fields[label][0] += " " + line
        i += 1
    return fields


class Project:
    """src/README.md's module table and rules, and every module's README list."""

    def __init__(self, root):
        self.root = root
        self.src = os.path.join(root, "src")
        self.levels = {}  # module -> row of the table (0 = top: depends on nothing)
        self.readme_line = {}  # module -> line of its "Modules:" field
        self.modules = {}  # module -> [(name, scope)]
        self.third_party = {}  # module -> [(library, scope)]
        self.subdirs = {}  # module -> its subfolders
        self.parse_index()
        for module in self.levels:
            self.parse_readme(module)

    def parse_index(self):
        path = os.path.join(self.src, "README.md")
        where = "src/README.md"
        if not os.path.exists(path):
            raise FormatError(f"{where}: missing")
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
        in_table = False
        for n, line in enumerate(lines, 1):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if line.startswith("|") and cells[0] == "module":
                in_table = True
            elif in_table and line.startswith("|"):
                if set(cells[0]) <= set("-: "):
                    continue
                level = len(set(self.levels.values()))
                for name in cells[0].split(","):
                    name = name.strip().strip("`")
                    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
                        raise FormatError(f"{where}:{n}: '{name}' is not a module name")
                    if name in self.levels:
                        raise FormatError(f"{where}:{n}: '{name}' is in the table twice")
                    self.levels[name] = level
            elif in_table:
                break
        if not self.levels:
            raise FormatError(f"{where}: no table whose first column is 'module'")
        for name in sorted(os.listdir(self.src)):
            full = os.path.join(self.src, name)
            if os.path.isdir(full) and name not in self.levels:
                raise FormatError(f"{where}: src/{name}/ is not in the module table")
        for name in self.levels:
            full = os.path.join(self.src, name)
            if not os.path.isdir(full):
                raise FormatError(f"{where}: the table names '{name}', but there is no src/{name}/")
            self.subdirs[name] = {d for d in os.listdir(full) if os.path.isdir(os.path.join(full, d))}
        for label in ("Composition roots", "Raw Linux headers"):
            start = next((i for i, l in enumerate(lines) if l.startswith(label + ":")), None)
            if start is None:
                raise FormatError(f"{where}: no line starting with '{label}:'")
            names = self.module_names(read_fields(lines, start, (label,), where)[label], where)
            if label == "Composition roots":
                self.roots = names
            else:
                self.raw_linux = names

    def module_names(self, field, where):
        text, n = field
        names = [name for name, _ in parse_list(text, f"{where}:{n}", False)]
        for name in names:
            if name not in self.levels:
                raise FormatError(f"{where}:{n}: '{name}' is not a module in the table")
        return names

    def parse_readme(self, module):
        where = f"src/{module}/README.md"
        path = os.path.join(self.src, module, "README.md")
        if not os.path.exists(path):
            raise FormatError(f"{where}: missing (every module has a README with a 'May depend on' section)")
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
        heading = next((i for i, l in enumerate(lines) if re.fullmatch(r"##+ May depend on\s*", l)), None)
        if heading is None:
            raise FormatError(f"{where}: no '## May depend on' heading")
        first = heading + 1
        while first < len(lines) and not lines[first].strip():
            first += 1
        labels = ("Modules", "Third-party")
        fields = read_fields(lines, first, labels, where)
        for label in labels:
            if label not in fields:
                raise FormatError(f"{where}:{first + 1}: the section's first paragraph has no '{label}:' line")
        text, n = fields["Modules"]
        self.readme_line[module] = n
        self.modules[module] = parse_list(text, f"{where}:{n}", False)
        for name, _ in self.modules[module]:
            target, _, sub = name.partition("/")
            if target not in self.levels or target == module:
                raise FormatError(f"{where}:{n}: '{name}' is not another module of src/README.md's table")
            if sub and (sub in TEST_DIRS or sub not in self.subdirs[target]):
                raise FormatError(f"{where}:{n}: '{name}': src/{name}/ is not an implementation folder")
        text, n = fields["Third-party"]
        self.third_party[module] = parse_list(text, f"{where}:{n}", True)
        for name, scope in self.third_party[module]:
            if name not in LIBRARIES:
                raise FormatError(f"{where}:{n}: '{name}' is not a library the checker knows ("
                                  + ", ".join(sorted(LIBRARIES)) + "; GoogleTest needs no entry); "
                                  "add it to LIBRARIES in scripts/check_deps.py")
            if scope is not None and (not scope.endswith("/") or scope[:-1] not in self.subdirs[module]):
                raise FormatError(f"{where}:{n}: '{scope}' is not a folder of src/{module}/ (written `folder/`)")

    def listed_modules(self, module):
        """The modules `module` may use (an implementation listed implies its module)."""
        return {name.partition("/")[0] for name, _ in self.modules[module]}

    def listed_implementations(self, module):
        return {name for name, _ in self.modules[module] if "/" in name}


# --- Checks -----------------------------------------------------------------

class Breach:
    def __init__(self, path, line, thing, rule, why):
        self.path, self.line, self.thing, self.rule, self.why = path, line, thing, rule, why

    def key(self):
        return (self.path, self.thing, self.rule)

    def text(self):
        return f"{self.path}:{self.line}: {self.thing} [{self.rule}]: {self.why}"


def library_of_header(header):
    if header.startswith(GTEST_HEADERS):
        return GTEST
    for name, (headers, _) in LIBRARIES.items():
        if any(header == h or (h.endswith(("/", "_")) and header.startswith(h)) for h in headers):
            return name
    return None


def is_raw_linux(header):
    return any(header == h or (h.endswith("/") and header.startswith(h)) for h in RAW_LINUX)


def is_system(header):
    if "/" not in header and "." not in header:
        return True  # the C++ standard library
    return header in SYSTEM_HEADERS or header.startswith(SYSTEM_DIRS)


class Checker:
    def __init__(self, project):
        self.p = project
        self.breaches = []
        self.files = 0
        self.cmake_files = 0

    def add(self, *args):
        self.breaches.append(Breach(*args))

    def not_above(self, target, module):
        if self.p.levels[target] == self.p.levels[module]:
            return f"`{target}` and `{module}` are peers (one row of src/README.md's table)"
        return f"`{target}` is not above `{module}` in src/README.md's table"

    def readme_list(self, module):
        names = [f"`{n}`" for n, _ in self.p.modules[module]]
        return ", ".join(names) if names else "none"

    def third_party_allowed(self, module, library, sub):
        """Whether the files of `module` in its folder `sub` (None: the
        module's own folder) may use `library`: where the README declares it
        (`in folder/` limits that to a folder), and in tests/ and testing/
        wherever the module declares it."""
        if sub in TEST_DIRS:
            return library == GTEST or any(name == library for name, _ in self.p.third_party[module])
        return any(name == library and scope in (None, f"{sub}/") for name, scope in self.p.third_party[module])

    def third_party_why(self, module, library):
        if library == GTEST:
            return "GoogleTest and GoogleMock only in tests/ and testing/ folders"
        owners = [f"`{m}`" + (f" in `{scope}`" if scope else "")
                  for m, declared in self.p.third_party.items() for lib, scope in declared if lib == library]
        return (f"`{library}` is not declared for this folder by src/{module}/README.md"
                f" (declared by: {', '.join(owners) if owners else 'no module'})")

    def check_readme_order(self):
        for module, entries in self.p.modules.items():
            path, n = f"src/{module}/README.md", self.p.readme_line[module]
            for name, _ in entries:
                target = name.partition("/")[0]
                if self.p.levels[target] >= self.p.levels[module]:
                    self.add(path, n, name, "order", self.not_above(target, module))
                if "/" in name and module not in self.p.roots:
                    self.add(path, n, name, "implementation",
                             f"`{name}` is an implementation; only the composition roots ("
                             + ", ".join(f"`{r}`" for r in self.p.roots) + ") name one")

    def check_sources(self):
        for module in self.p.levels:
            base = os.path.join(self.p.src, module)
            for dirpath, dirnames, filenames in os.walk(base):
                dirnames.sort()
                for name in sorted(filenames):
                    if name.endswith(SOURCE_SUFFIXES):
                        path = os.path.join(dirpath, name)
                        parts = rel(base, path).split("/")
                        self.check_file(module, parts[0] if len(parts) > 1 else None, path)

    def check_file(self, module, sub, path):
        self.files += 1
        where = rel(self.p.root, path)
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        # Block comments out, line count kept.
        text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
        for n, line in enumerate(text.split("\n"), 1):
            m = INCLUDE_RE.match(line)
            if not m:
                continue
            if m.group(1) == '"':
                self.check_quoted(module, sub, where, n, m.group(2))
            else:
                self.check_angled(module, sub, where, n, m.group(2))

    def check_quoted(self, module, sub, where, n, header):
        thing = f'"{header}"'
        parts = header.split("/")
        target = parts[0]
        if len(parts) < 2 or target not in self.p.levels:
            self.add(where, n, thing, "module",
                     "not a module's header: quoted includes name their module (\"module/file.h\"), "
                     "system and library headers use <>")
            return
        target_sub = parts[1] if len(parts) > 2 and parts[1] in self.p.subdirs[target] else None
        breach = self.module_rule(module, sub in TEST_DIRS, target, target_sub)
        if breach:
            self.add(where, n, thing, *breach)

    def module_rule(self, module, in_tests, target, target_sub):
        """(rule, why) if code of `module` (in tests/ or testing/ if
        `in_tests`) may not use `target`'s folder `target_sub` (None: its
        interface), else None."""
        name = f"{target}/{target_sub}" if target_sub else target
        if target == module:
            if target_sub in TEST_DIRS and not in_tests:
                return "testing", f"src/{name}/ is for tests; the module's code does not use it"
        elif self.p.levels[target] >= self.p.levels[module]:
            return "order", self.not_above(target, module)
        elif target not in self.p.listed_modules(module):
            return "module", f"`{target}` is not in src/{module}/README.md's list (Modules: {self.readme_list(module)})"
        elif target_sub in TEST_DIRS and (target_sub == "tests" or not in_tests):
            return "testing", f"src/{name}/ is only for tests/ and testing/ folders"
        elif target_sub and not in_tests and name not in self.p.listed_implementations(module):
            return "implementation", (f"`{name}` is an implementation of `{target}`'s interface; only the "
                                      "composition roots wire implementations (and tests)")
        return None

    def check_angled(self, module, sub, where, n, header):
        thing = f"<{header}>"
        in_tests = sub in TEST_DIRS
        library = library_of_header(header)
        if library is not None:
            if not self.third_party_allowed(module, library, sub):
                self.add(where, n, thing, "third-party", self.third_party_why(module, library))
        elif is_raw_linux(header):
            if module not in self.p.raw_linux and not in_tests:
                self.add(where, n, thing, "raw-linux",
                         "raw Linux interfaces only in " + ", ".join(f"`{m}`" for m in self.p.raw_linux)
                         + " (src/README.md)")
        elif not is_system(header):
            self.add(where, n, thing, "unknown-header",
                     "neither the standard library, glibc, nor a library scripts/check_deps.py knows; "
                     "add it to LIBRARIES there and to its wrapper module's README")

    # --- CMake ---------------------------------------------------------------

    def check_cmake(self):
        """The links of src/<module>/CMakeLists.txt: dspool_library's and
        dspool_test's DEPS, and target_link_libraries of the module's targets."""
        calls, self.targets = {}, {}  # module -> [(command, args, path)]; target -> folder
        for module in self.p.levels:
            path = os.path.join(self.p.src, module, "CMakeLists.txt")
            if os.path.exists(path):
                self.cmake_files += 1
                calls[module] = [(c, a, rel(self.p.root, path)) for c, a in cmake_calls(path)]
        for module, module_calls in calls.items():
            for command, args, _ in module_calls:
                if command == "dspool_library" and args:
                    self.targets["dspool_" + args[0][0]] = self.folder_of(module, "dspool_" + args[0][0])
                elif command == "add_library" and args:
                    self.targets[args[0][0]] = self.folder_of(module, args[0][0])
                elif command == "dspool_test" and args:
                    self.targets[args[0][0]] = "tests"
        for module, module_calls in calls.items():
            for command, args, where in module_calls:
                if command in ("dspool_library", "dspool_test") and args:
                    deps, after_deps = [], False
                    for token, n in args[1:]:
                        if token in ("SRCS", "DEPS", "LABEL"):
                            after_deps = token == "DEPS"
                        elif after_deps:
                            deps.append((token, n))
                    target = ("dspool_" if command == "dspool_library" else "") + args[0][0]
                elif command == "target_link_libraries" and args and args[0][0] in self.targets:
                    target, deps = args[0][0], args[1:]
                else:
                    continue
                for token, n in deps:
                    for name in re.findall(r"[A-Za-z0-9_]+::[A-Za-z0-9_]+|dspool_[a-z0-9_]+", token):
                        self.check_link(module, self.targets[target], where, n, name)

    def folder_of(self, module, target):
        """dspool_store_sqlite -> "sqlite" (a folder of src/store/); None for the module's own library."""
        rest = target[len("dspool_" + module) + 1:]
        return rest if rest in self.p.subdirs.get(module, ()) else None

    def check_link(self, module, sub, where, n, name):
        if name.startswith("dspool_"):
            target = next((m for m in sorted(self.p.levels, key=len, reverse=True)
                           if name == "dspool_" + m or name.startswith("dspool_" + m + "_")), None)
            breach = target and self.module_rule(module, sub in TEST_DIRS, target, self.folder_of(target, name))
            if breach:
                self.add(where, n, name, *breach)
            return
        if name in SYSTEM_TARGETS:
            return
        library = GTEST if name.startswith(GTEST_TARGETS) else next(
            (lib for lib, (_, targets) in LIBRARIES.items() if name.startswith(targets)), None)
        if library is None:
            self.add(where, n, name, "unknown-header",
                     "a CMake target scripts/check_deps.py does not know; add its library to LIBRARIES there")
        elif not self.third_party_allowed(module, library, sub):
            self.add(where, n, name, "third-party", self.third_party_why(module, library))

    def check_subdirectory_order(self):
        path = os.path.join(self.p.src, "CMakeLists.txt")
        if not os.path.exists(path):
            return
        self.cmake_files += 1
        highest = None
        for command, args in cmake_calls(path):
            if command != "add_subdirectory" or not args or args[0][0] not in self.p.levels:
                continue
            name, n = args[0]
            if highest is not None and self.p.levels[name] < self.p.levels[highest]:
                self.add("src/CMakeLists.txt", n, name, "order",
                         f"added after `{highest}`, which is below it in src/README.md's table (bottom up)")
            elif highest is None or self.p.levels[name] > self.p.levels[highest]:
                highest = name


def cmake_calls(path):
    """[(command, [(argument, line)])] of a CMakeLists.txt, comments dropped."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for i, line in enumerate(lines):  # a '#' outside quotes starts a comment
        quote = False
        for j, ch in enumerate(line):
            if ch == '"':
                quote = not quote
            elif ch == "#" and not quote:
                lines[i] = line[:j]
                break
    text = "\n".join(lines)
    calls, pos = [], 0
    for m in re.finditer(r"(?<![A-Za-z0-9_])([A-Za-z_][A-Za-z0-9_]*)\s*\(", text):
        if m.start() < pos:
            continue  # inside the previous call's arguments
        depth, i, quote = 1, m.end(), False
        while i < len(text) and depth:
            quote = quote != (text[i] == '"')
            depth += 0 if quote else {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        pos = i
        args = [(t.group(0).strip('"'), text.count("\n", 0, m.end() + t.start()) + 1)
                for t in re.finditer(r'"[^"]*"|[^\s"]+', text[m.end():i - 1])]
        calls.append((m.group(1), args))
    return calls


# --- Baseline ------------------------------------------------------------------

def read_baseline(path, where):
    """{(file, thing, rule): (reason, line)}; lines 'FILE THING RULE REASON...'."""
    entries = {}
    if not os.path.exists(path):
        return entries
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            fields = line.split(None, 3)
            if len(fields) < 4:
                raise FormatError(f"{where}:{n}: expected 'FILE INCLUDE RULE REASON' (the reason names the "
                                  "issue point that removes the breach)")
            key = tuple(fields[:3])
            if key in entries:
                raise FormatError(f"{where}:{n}: the same entry as line {entries[key][1]}")
            entries[key] = (fields[3], n)
    return entries


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=os.path.dirname(here), help="the checkout (default: %(default)s)")
    parser.add_argument("--baseline", help="known breaches (default: ROOT/scripts/deps_baseline.txt)")
    args = parser.parse_args(argv)
    root = os.path.abspath(args.root)
    baseline_path = args.baseline or os.path.join(root, "scripts", "deps_baseline.txt")
    baseline_where = rel(root, baseline_path)
    if baseline_where.startswith("../"):
        baseline_where = baseline_path
    try:
        project = Project(root)
        baseline = read_baseline(baseline_path, baseline_where)
    except FormatError as e:
        print(f"check_deps: error: {e}")
        print("check_deps: the format is in src/README.md, 'Dependency rules'; nothing was checked")
        return 2

    checker = Checker(project)
    checker.check_readme_order()
    checker.check_sources()
    checker.check_cmake()
    checker.check_subdirectory_order()

    new, known, seen = [], [], set()
    for b in sorted(checker.breaches, key=lambda b: (b.path, b.line, b.thing, b.rule)):
        if b.key() in baseline:
            known.append(b)
            seen.add(b.key())
        else:
            new.append(b)
    stale = sorted((entry for entry in baseline.items() if entry[0] not in seen), key=lambda e: e[1][1])
    for b in new:
        print(f"BREACH {b.text()}")
    for b in known:
        print(f"known  {b.path}:{b.line}: {b.thing} [{b.rule}]: {baseline[b.key()][0]}")
    for (path, thing, rule), (_, n) in stale:
        print(f"STALE  {baseline_where}:{n}: {path} {thing} [{rule}] no longer occurs: delete the entry "
              "(the baseline only shrinks)")
    failed = bool(new or stale)
    print(f"check_deps: {len(new)} new, {len(known)} known (baseline), {len(stale)} stale baseline "
          f"{'entry' if len(stale) == 1 else 'entries'}; {checker.files} source files, "
          f"{checker.cmake_files} CMakeLists.txt, {len(project.levels)} modules: "
          + ("FAILED" if failed else "ok"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
