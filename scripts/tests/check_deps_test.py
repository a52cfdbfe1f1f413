"""Self-test of scripts/check_deps.py on the fixture trees in check_deps/.

check_deps/tree/ is a small checkout that keeps every rule. Each folder in
check_deps/cases/ is laid over a copy of it (its files replace or add to the
tree's) and holds expected.txt: a first line "exit N", then exactly what the
checker prints. A new case is a new folder. Run by CTest (label unit) with
/usr/bin/python3; standard library only.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKER = os.path.join(os.path.dirname(HERE), "check_deps.py")
FIXTURES = os.path.join(HERE, "check_deps")
CASES = os.path.join(FIXTURES, "cases")
RULES = ("module", "order", "implementation", "testing", "third-party", "raw-linux", "unknown-header")


def run_case(case):
    """(exit status, output) of the checker on the tree with `case` laid over it."""
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "checkout")
        shutil.copytree(os.path.join(FIXTURES, "tree"), root)
        overlay = os.path.join(CASES, case)
        for dirpath, _, filenames in os.walk(overlay):
            for name in filenames:
                if dirpath == overlay and name == "expected.txt":
                    continue
                target = os.path.join(root, os.path.relpath(os.path.join(dirpath, name), overlay))
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copyfile(os.path.join(dirpath, name), target)
        result = subprocess.run([sys.executable, CHECKER, "--root", root], capture_output=True, text=True,
                                cwd=tmp, timeout=60)
        return result.returncode, result.stdout + result.stderr


def expected(case):
    with open(os.path.join(CASES, case, "expected.txt"), encoding="utf-8") as f:
        first, _, output = f.read().partition("\n")
    return int(first.removeprefix("exit ")), output


class CheckDepsTest(unittest.TestCase):
    maxDiff = None

    def test_cases(self):
        cases = sorted(os.listdir(CASES))
        self.assertIn("clean", cases)
        for case in cases:
            with self.subTest(case=case):
                status, output = run_case(case)
                want_status, want_output = expected(case)
                self.assertEqual(output, want_output)
                self.assertEqual(status, want_status)

    def test_breaches_case_covers_every_rule(self):
        _, output = expected("breaches")
        for rule in RULES:
            self.assertIn(f"[{rule}]: ", output, f"no breach of rule {rule} in cases/breaches")
        self.assertIn("\nknown  ", output)
        self.assertIn("\nSTALE  ", output)


if __name__ == "__main__":
    unittest.main()
