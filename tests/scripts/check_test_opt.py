#!/usr/bin/env python3
"""The optimisation level a test unit's host code is really compiled at, checked against the one
tests/CMakeLists.txt means it to have (PIPESCHED_TESTS_OPT, PIPESCHED_TESTS_CUDA_HOST_OPT, a
test's "// opt:" line):

  check_test_opt.py BUILD/compile_commands.json UNIT=LEVEL [UNIT=LEVEL ...]

UNIT is matched against the end of the source paths. For a C++ unit the level is the last -O of
its command (g++ takes the last). For a .cu unit nvcc is asked (-dryrun) what it runs, and the
level is the last -O of its final host-compiler call: nvcc puts its own -O (from a build type's
flags) after every -Xcompiler option, so the command's last -O is not what the host compiler
gets (no -O there is the host compiler's -O0). Exit 0 when every unit matches, 1 when one does
not, 77 (skipped) when there is no compile_commands.json.
"""
import json
import os
import re
import shlex
import subprocess
import sys


def last_level(args):
    levels = [m.group(2) for a in args for m in [re.fullmatch(r"(-Xcompiler=)?(-O[0-9gs]?)", a)] if m]
    return levels[-1] if levels else "-O0"


def host_level_of_nvcc(entry, args):
    """The last -O of the final host compile that `nvcc ... -dryrun` shows."""
    r = subprocess.run(args + ["-dryrun"], cwd=entry["directory"], capture_output=True, text=True)
    lines = [ln[3:] for ln in (r.stdout + r.stderr).splitlines() if ln.startswith("#$ ")]
    # the host compile of the translated unit: a call with -c whose input is nvcc's .cudafe1.cpp
    host = [ln for ln in lines if ".cudafe1.cpp" in ln and " -c " in ln and "cudafe++" not in ln]
    if r.returncode != 0 or not host:
        raise RuntimeError(f"nvcc -dryrun showed no host compile (exit {r.returncode}):\n{r.stderr[-2000:]}")
    return last_level(shlex.split(host[-1]))


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    if not os.path.isfile(sys.argv[1]):
        print(f"SKIPPED: no {sys.argv[1]} (CMAKE_EXPORT_COMPILE_COMMANDS off)")
        return 77
    with open(sys.argv[1]) as f:
        entries = json.load(f)
    failed = 0
    for pair in sys.argv[2:]:
        unit, want = pair.rsplit("=", 1)
        found = [e for e in entries if os.path.normpath(e["file"]).endswith(os.sep + os.path.normpath(unit))]
        if len(found) != 1:
            print(f"FAILED {unit}: {len(found)} units of that name in compile_commands.json (want one)")
            failed += 1
            continue
        e = found[0]
        args = e["arguments"] if "arguments" in e else shlex.split(e["command"])
        got = host_level_of_nvcc(e, args) if e["file"].endswith(".cu") else last_level(args)
        ok = got == want
        failed += 0 if ok else 1
        print(f"{'ok    ' if ok else 'FAILED'} {unit}: host code at {got}, meant {want}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
