"""Makes cleanlab_reference.npz, the reference values of tests/test_dynamics.py's cleanlab test.

Run once, in a virtual environment with cleanlab (not a dependency of this project):

  python3 -m venv /tmp/clvenv && /tmp/clvenv/bin/pip install cleanlab==2.7.1
  /tmp/clvenv/bin/python tests/data/cleanlab_reference.py

It stores the inputs (200 rows of 5-class probabilities and labels) with cleanlab's outputs, so
the test compares against cleanlab without importing it, whatever numpy's random streams do.
"""

import os

import cleanlab
import numpy as np
from cleanlab import count, rank

rng = np.random.default_rng(0)
probs = rng.dirichlet(np.ones(5), size=200)
labels = rng.integers(0, 5, size=200)
out = {'probs': probs, 'labels': labels,
       'confident_thresholds': count.get_confident_thresholds(labels, probs)}
for method in ('self_confidence', 'normalized_margin'):
  for adjust in (False, True):
    out[f'{method}_adjust{int(adjust)}'] = rank.get_label_quality_scores(
        labels, probs, method=method, adjust_pred_probs=adjust)
# What the test relies on: every array is finite, of the inputs' length, and the scores are
# label-quality scores in [0, 1] (a failed or changed cleanlab call would show here first).
assert out['confident_thresholds'].shape == (5,) and np.isfinite(out['confident_thresholds']).all()
for name, values in out.items():
  if name.endswith(('_adjust0', '_adjust1')):
    assert values.shape == (200,) and np.all((0 <= values) & (values <= 1)), name
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'cleanlab_reference.npz')
np.savez(path, cleanlab_version=np.asarray(cleanlab.__version__), **out)
print(f'wrote {path} (cleanlab {cleanlab.__version__})')
