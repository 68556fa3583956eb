#!/usr/bin/env python3
"""The executable's wraps of the static libmilter are in effect (milter/main.cpp): libmilter's calls of
sigwait, pthread_create, pthread_detach and poll land in the __wrap_ functions, and the poll that
command_wait lengthens is still there: mi_engine's one-descriptor poll with a 1 ms timeout
(MI_RD_CMD_TO). A link option dropped or a libmilter whose check changed fails here, where the tests of
milter/command_wait.hpp (which call it directly) would still pass.

    python3 tests/check_libmilter_wraps.py path/to/cllavio-milter
"""

import re
import subprocess
import sys


def main() -> int:
    binary = sys.argv[1]
    dis = subprocess.run(["objdump", "-d", "--no-show-raw-insn", binary], capture_output=True, text=True,
                         check=True, timeout=300).stdout
    funcs: dict[str, list[str]] = {}
    current = None
    for line in dis.splitlines():
        m = re.match(r"^[0-9a-f]+ <([^>]+)>:$", line)
        if m:
            current = funcs.setdefault(m.group(1), [])
        elif current is not None and "\t" in line:
            current.append(line.split("\t", 1)[1].strip())
    problems = []
    for fn, target in (("mi_signal_thread", "sigwait"), ("mi_start_session", "pthread_create"),
                       ("mi_worker", "pthread_detach"), ("mi_engine", "poll")):
        body = funcs.get(fn)
        if body is None:
            problems.append(f"{fn} not found in {binary} (libmilter not linked statically?)")
            continue
        if not any(re.search(rf"call\s.*<__wrap_{target}>", i) for i in body):
            problems.append(f"{fn} does not call __wrap_{target}")
        if any(re.search(rf"call\s.*<{target}@plt>", i) for i in body):
            problems.append(f"{fn} still calls {target} directly")
    engine = funcs.get("mi_engine", [])
    calls = [k for k, i in enumerate(engine) if re.search(r"call\s.*<__wrap_poll>", i)]
    one_ms = [k for k in calls if "mov    $0x1,%edx" in engine[max(0, k - 6):k]
              and "mov    $0x1,%esi" in engine[max(0, k - 6):k]]
    if calls and not one_ms:
        problems.append("mi_engine's poll is no longer poll(fd, 1, 1): milter/command_wait.hpp no longer applies")
    for p in problems:
        print("FAIL", p)
    if not problems:
        print(f"ok: libmilter's sigwait, pthread_create, pthread_detach and poll are wrapped; "
              f"mi_engine polls one descriptor for 1 ms ({len(one_ms)} call)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
