#!/usr/bin/env python3
"""Loop stalls of the noisy-neighbour bench, from a traced broker (issue 11).

Build minikora with tests/bench/noisy_trace.patch applied (git apply), then run
  MINIKORA_TURN_TRACE_US=1000 MKBENCH_SLOW_US=2000 BENCH_ONLY=noisy \
      MINIKORA=/path/to/traced/minikora BENCH_OUT=DIR tests/bench/run.sh
and `noisy_trace.py DIR...`.  The traced broker writes to noisy.log a line for
every loop turn whose wall time (poll excluded) is at least the threshold or
whose CPU time (CLOCK_THREAD_CPUTIME_ID of the loop thread) is at least half of
it, and one for every request of tenant-a and every request of at least the
threshold.  CPU time is what the loop thread spent, whatever else the machine
ran: on a shared machine it is the figure to compare, not the wall time.

For each phase (alone, throttled): turns of >= 1 and >= 2 ms of CPU, how many
of them handled one of A's Produce requests, and A's Produce CPU per request.
"""
import bisect
import re
import sys


def phase_start(d, phase):
    for line in open(f'{d}/noisy-{phase}-b.err'):
        m = re.search(r'second 1 \(from ([\d.]+)\)', line)
        if m:
            return float(m[1]) * 1000
    return None


def main():
    for d in sys.argv[1:]:
        for phase in ('alone', 'throttled'):
            t0 = phase_start(d, phase)
            if t0 is None:
                continue
            t1 = t0 + 15000
            turns, areq = [], []
            for line in open(f'{d}/noisy.log'):
                if not line.startswith('TRACE'):
                    continue
                f = line.split()
                s = float(f[2])
                if not t0 <= s <= t1:
                    continue
                if f[1] == 'turn':
                    turns.append((s, float(f[4]), float(f[6])))
                elif f[1] == 'req' and f[9] == 'tenant-a' and f[5] == '0':
                    areq.append((s, float(f[3]), float(f[11]), int(f[7])))
            starts = sorted(a[0] for a in areq)

            def with_a(t):
                i = bisect.bisect_left(starts, t[0] - 0.05)
                return i < len(starts) and starts[i] <= t[0] + t[1] + 0.05

            out = [f'{d} {phase}']
            for th in (1, 2):
                big = [t for t in turns if t[2] >= th]
                out.append(f'turns >={th} ms CPU {len(big)} (with an A Produce {sum(map(with_a, big))})')
            large = sorted(a[2] for a in areq if a[3] > 100000)
            if large:
                out.append(f'A Produce over 100 KB: n {len(large)}, CPU median {large[len(large) // 2]:.2f} '
                           f'max {large[-1]:.2f} ms')
            print('; '.join(out))


if __name__ == '__main__':
    main()
