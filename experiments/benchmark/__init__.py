"""Cost benchmark: every method's step as a ratio to a plain step, meta-gradient modes vs T, peers.

  python -m experiments.benchmark --out=results/benchmark          # full run
  python -m experiments.benchmark --quick --out=/tmp/bench         # seconds; what the tests run
  python -m experiments.benchmark --peers ...                      # also the PyTorch peers
  python -m experiments.benchmark --sections=time_to_result        # one section; the others
                                                                   # kept from OUT/benchmark.json
  python -m experiments.benchmark --sections=corpus                # corpus scoring (not in --quick)

Writes DIR/benchmark.json (everything measured, the machine, the targets),
DIR/benchmark.md (tables, each target with its figure and status, causes of
missed targets, from DIR/notes.md) and DIR/modes_vs_T.png (time and memory of
the meta-gradient per mode vs the unroll length T).

How it measures: every timing is the median of `repeats` blocks of calls of
a compiled program, after compilation and one warm-up call; every time is
reported as a ratio to the plain step of the same model and batch, measured
in the same run, in blocks that alternate with the measured program (load
from other processes then hits both alike). Memory is XLA's static buffer
assignment of the compiled program (`compiled.memory_analysis()`,
`temp_size_in_bytes`: what the backward pass keeps alive), FLOPs are
`datarater.train.flops.compiled_flops` (loop bodies times their trip counts).

Sections, one module each:
* `modes`: the DataRater meta-gradient (`unroll.meta_loss_and_grad`; MLP
  64-256-256-10, B=128, Adam(eps_root=1e-8), MLP rater, 10 warm-up steps) for
  T = 1..32 and every mode: time per inner step / plain weighted Adam step,
  temp memory, compile time, FLOPs, and the gradient's difference from
  'reverse'; the FLOPs-count check; rater forward throughput (examples scored
  per second) vs training throughput (examples per second of the plain step).
* `methods`: each registered method's step (built by its own `make` on the
  digits preset with the same MLP and batch) / the uniform method's step.
* `time_to_result`: whole `experiments.train` processes (the quick-start
  DataRater job, uniform digits, L2RW on a noisy-digits npz) with an empty and
  a warm compilation cache, against their floor (Python with jax, flax and
  optax imported plus the job's steps fused in one jitted scan per phase), and
  `experiments.train --help`.
* `corpus` (issue 20; minutes, so not part of --quick): whole `experiments.score` processes
  with a tiny DataRater text run on a ~12 MB and a 10x larger (~120 MB) corpus of the same
  documents, 1 process each, and the large one with 2 processes: wall time, documents/s,
  windows/s and each process's peak RSS; target: peak RSS large / small <= 1.2.
* `torch_peer` (only with --peers, needs `requirements-bench.txt`; the only
  module that imports torch): the one-step L2RW meta-gradient in PyTorch
  `torch.func` vs ours at hidden 256 and 1024, and, in the time-to-result
  section, the L2RW job (1500 steps on the noisy-digits npz, same model,
  batch, optimizer and evaluation cadence) as whole processes run in
  alternating pairs.

The rest: `timing` (paired timing, compiling, memory), `targets` (issues 11 and 23:
targets and their evaluation), `core` (`run_benchmark`, the machine), `report`
(benchmark.json/.md, the plot) and `__main__` (the flags).

Bad flags exit with status 2 and one line on stderr, before anything is
written.
"""
