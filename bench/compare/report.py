"""bench/compare: reads the RESULT and MICRO lines of both sides and prints one table.

    python3 report.py OUTPUT_FILE...

Standard library only (runs with any python3).
"""

import json
import math
import os
import sys

P = 4
LABEL = {
    "torch": "torch.pipelining gloo 4 proc",
    "pipesched-mpi": "pipesched mpi 4 proc",
    "pipesched-threads": "pipesched threads 1 proc",
}
ORDER = ["torch", "pipesched-mpi", "pipesched-threads"]
SCHEDULES = ["1F1B", "GPipe", "Interleaved1F1B"]


def main(paths):
    results, micro, load = {}, {}, {}
    for path in paths:
        if not os.path.exists(path):  # a side that failed left no output: its rows say so
            continue
        with open(path) as f:
            for line in f:
                if line.startswith("RESULT "):
                    r = json.loads(line[7:])
                    results[(r["runtime"], r["schedule"], r["m"])] = r
                elif line.startswith("LOAD "):
                    r = json.loads(line[5:])
                    load[r["side"]] = r
                elif line.startswith("MICRO "):
                    r = json.loads(line[6:])
                    micro[r["runtime"]] = r["fb_us"]
    cores = os.cpu_count() or 1
    fb = {  # the F+B time of one stage pass each runtime's stages run
        "torch": micro.get("torch autograd"),
        "pipesched-mpi": micro.get("c++ loops (-O2)"),
        "pipesched-threads": micro.get("c++ loops (-O2)"),
    }

    def ideal_ms(runtime, r):
        # The step with a runtime that costs nothing: the compute critical path of the schedule,
        # (m*v + p - 1) stage passes, or the total compute spread over the cores, whichever is
        # longer (4 ranks share `cores` cores).
        t = fb.get(runtime)
        if t is None:
            return None
        v = r["stages"] // P
        return max(r["m"] * v + P - 1, r["stages"] * r["m"] / cores) * t / 1000.0

    print("# pipesched vs torch.distributed.pipelining: p = 4 ranks, one 64x64 linear layer per stage,")
    print("# 8 rows per micro-batch, MSE loss on the last stage, forward + backward per step, CPU only.")
    print("# step: median wall time of one step (slowest rank) over the timed steps, after warm-up;")
    print("# us/act: step / actions (F, B, SEND, RECV over all ranks); ideal: the step if the runtime")
    print(f"# cost nothing, from the measured stage pass below and {cores} cores; compute: ideal / step.")
    print("# schedules: 1F1B = Schedule1F1B / one_f_one_b, GPipe = ScheduleGPipe / gpipe, Interleaved1F1B =")
    print("# ScheduleInterleaved1F1B / interleaved_1f1b<..., chunks<2>> (2 stages per rank: S = 8).")
    print("#")
    print("# one stage pass alone (F+B of the layer on 8x64, incl. input gradient, 1 thread), median:")
    print("#   " + "   ".join(f"{k}: {v:.1f} us" for k, v in micro.items()))
    if load:
        print("# CPU other processes took while each side ran, in cores (of %d):" % cores)
        print("#   " + ", ".join(f"{k} {v['other_cores']:.2f}"
                               + (f" (attempt {v['attempt']})" if v.get("attempt", 1) > 1 else "") for k, v in load.items()))
        busy = [k for k, v in load.items() if v["other_cores"] > 0.1]
        if busy:
            print("#   WARNING: the machine was not quiet during: " + ", ".join(busy) + " (those numbers are slower)")
    print("#")
    head = (f"{'schedule':<16}{'m':>4}{'S':>3}{'actions':>8}  {'runtime':<29}{'step(ms)':>9}{'us/act':>8}"
            f"{'ideal(ms)':>10}{'compute':>8}{'torch/this':>11}  grads")
    print(head)
    print("-" * len(head))
    speedups = {"pipesched-mpi": [], "pipesched-threads": []}
    checks, missing = [], []
    for s in SCHEDULES:
        for m in (8, 32):
            torch_r = results.get(("torch", s, m))
            first = True
            for rt in ORDER:
                r = results.get((rt, s, m))
                lead = f"{s:<16}{m:>4}" if first else f"{'':<16}{'':>4}"
                first = False
                if r is None or "error" in r:
                    why = r["error"] if r else "no result"
                    missing.append(f"{LABEL[rt]} {s} m={m}: {why}")
                    print(f"{lead}{'':>3}{'':>8}  {LABEL[rt]:<29}  failed: {why[:60]}")
                    continue
                ideal = ideal_ms(rt, r)
                ratio = ""
                if torch_r and "step_ms" in torch_r:
                    x = torch_r["step_ms"] / r["step_ms"]
                    ratio = "1.00" if rt == "torch" else f"{x:.1f}x"
                    if rt != "torch":
                        speedups[rt].append(x)
                checks.append(r["check"])
                step = r["step_ms"]
                ideal_s = "-" if ideal is None else f"{ideal:.3f}"
                share_s = "-" if ideal is None else f"{100 * ideal / step:.0f}%"
                print(f"{lead}{r['stages']:>3}{r['actions']:>8}  {LABEL[rt]:<29}{step:>9.3f}"
                      f"{1000 * step / r['actions']:>8.2f}{ideal_s:>10}{share_s:>8}{ratio:>11}  {r['check']}")
    print("-" * len(head))

    def span(v):
        if not v:
            return "n/a"
        g = math.exp(sum(map(math.log, v)) / len(v))
        return f"{min(v):.1f}x-{max(v):.1f}x (geomean {g:.1f}x)"

    ok = all(c == "OK" for c in checks) and not missing
    print(f"Summary: torch.distributed.pipelining step time / pipesched: MPI {span(speedups['pipesched-mpi'])}, "
          f"threads {span(speedups['pipesched-threads'])}; gradient checks "
          f"{'all OK' if ok else 'NOT all OK'} ({checks.count('OK')}/{len(checks)} OK"
          f"{', ' + str(len(missing)) + ' missing' if missing else ''}).")
    for line in missing:
        print("  missing: " + line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
