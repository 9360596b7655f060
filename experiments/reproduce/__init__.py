"""Reproduction suites: published tables beside ours, over seeds, with paired comparisons.

  python -m experiments.reproduce --suite=noisy_labels --scale=cpu [--seeds=3]
      [--headline_seeds=10] [--out=results]

runs every (setting, method, seed) of a suite into
`<out>/<suite>/<scale>/runs/<setting>/<method>/seed<k>/` (a run whose
summary.json parses is reused, so an interrupted suite resumes), then writes
`table.md`, `table.csv` and `plots/` beside `runs/`. Every cell runs seeds
0..seeds-1, except in the settings the suite headlines at that scale
(Suite.headline: the cells the README quotes), which run max(headline_seeds,
seeds) seeds (10 by default). Each cell is the mean and standard deviation over
the seeds it ran; each method is compared with uniform training
of the same seed (same initial parameters and data order, see
configs/common.py: paired_arms) by the mean paired difference and its 95%
t-interval over seeds. Published numbers (third_party/*.csv) stand beside the
rows they correspond to, and each table's header says how our setup differs.

Scales: 'smoke' (a few steps, for tests), 'cpu' (each suite well under an hour
on 2 CPU cores; the grid is stated in the table header) and 'paper' (the
papers' datasets through TFDS, architectures and schedules, for accelerators
with prepared TFDS data). Suites: one module each in suites/ (SUITES).

The package: __main__ (the command line), core (Run/Metric/Suite, run
directories, resume, fingerprint checks, wall-time records), stats (paired
intervals), published (third_party lookups), report (tables and plots) and
suites/<name>.py (each suite's grid, columns, header and notes). Adding a
suite is adding one module to suites/.
"""

from experiments.reproduce.core import (DEFAULT_HEADLINE_SEEDS, DEFAULT_SEEDS, SCALES, WALL_FILE,
                                        Metric, Run, Suite, check_finished, run_dir, run_suite,
                                        runs_wall_seconds, setting_seeds, slug)
from experiments.reproduce.published import find_published
from experiments.reproduce.report import table_rows, write_outputs
from experiments.reproduce.stats import mean_std, paired_interval
from experiments.reproduce.suites import SUITES

__all__ = ['DEFAULT_HEADLINE_SEEDS', 'DEFAULT_SEEDS', 'SCALES', 'SUITES', 'WALL_FILE', 'Metric',
           'Run', 'Suite', 'check_finished', 'find_published', 'mean_std', 'paired_interval',
           'run_dir', 'run_suite', 'runs_wall_seconds', 'setting_seeds', 'slug', 'table_rows',
           'write_outputs']
