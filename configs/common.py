"""Shared configuration: the base config and presets every `configs/*.py` file starts from.

Every shared field is documented here once; method config files only add their
`config.method.*` fields (documented in their own module docstring) and change
defaults. Config files call `parse_arg(arg)` on the
`--config=configs/x.py:dataset=digits,model=mlp,smoke` argument, then
`base_config(arg)`. Measured results live in the README only.

Fields of the base config
-------------------------
seed               int in [0, 2**32). Seeds parameter init, data corruption, data
                   order and method randomness. Same seed + same machine => same
                   metrics. (jax.random.key keeps only 32 bits of a seed without
                   jax_enable_x64, so larger seeds would repeat smaller ones.)
num_steps          int. Steps of the main training phase.
batch_size         int. Global training batch (split across devices; must be a
                   multiple of the device count).
eval_batch_size    int. Batch for evaluation passes (multiple of device count).
log_every          int. Log train metrics every this many steps.
eval_every         int. Evaluate on `meta`, `valid` and `test` (see eval_test)
                   every this many steps (and always at the last step).
eval_test          'every' (default) | 'last'. Whether the `test` split is
                   evaluated at every evaluation or only at each phase's last
                   step (the test set looked at once; cheaper when it is large
                   and evaluations are frequent). Changes no training; with
                   'last' a phase's early-stopped test metrics are null unless
                   its best validation step is the last one.
checkpoint_every   int. Save an orbax checkpoint every this many steps (and
                   always at the last step). Re-running resumes from the latest.
steps_per_dispatch int >= 0. Up to this many steps run in one jitted lax.scan
                   over prefetched batches; a dispatch is cut at log, eval and
                   checkpoint steps, so metrics and checkpoints equal those of
                   1. Methods that draw their own batches (Method.sample) run 1.
                   0 (default) = chosen per phase (datarater.train.loop.
                   dispatch_steps): the largest divisor of the log, eval and
                   checkpoint intervals and the phase's steps, at most 100
                   steps and 64 MiB of batches, so one scanned program serves
                   the phase (it compiles beside the one-step program, on two
                   threads, in about the same time).
mesh.population    int dividing the device count: devices form a population x
                   data mesh. DataRater splits its inner models over the
                   population axis (method.population must be a multiple of
                   it); other methods use population 1.
paired_arms        bool. Phases of one run that are compared (filtered vs
                   uniform, retrained vs uniform) start from the same initial
                   parameters and see the same data order (True), or each
                   phase draws its own initial parameters (False).
nonfinite          'stop' | 'skip'. What a step does when a loss, gradient,
                   parameter, optimizer moment, meta-gradient, rater score or
                   method weight (anything in the metrics or states) is NaN or
                   inf. 'stop': keep the last good state, checkpoint it, exit
                   with status 3 and one line naming phase, step and metric (a
                   re-run says the same at once). 'skip': drop that update and
                   go on; metric `nonfinite/skipped` counts skips per logging
                   window, the ledger's `skipped_steps` in total. A stopped run
                   may be resumed with 'skip'.

data.name          'digits' | 'stdlib_text' | 'npz' | 'text' (your documents,
                   byte-level LM like stdlib_text) | 'table' (your table,
                   classification) | 'mnist1d' (MNIST-1D,
                   generated offline; 4,000 train / 1,000 test, its own split:
                   data.test_fraction does not apply) | 'tabular' (sklearn
                   make_classification, 3 classes, 20 features) | any TFDS name
                   (mnist, fashion_mnist, cifar10, cifar100, tiny_shakespeare
                   are wired to models; others work if they have
                   image/label or text features).
data.path          str. For 'text' / 'table': a file, a glob or a directory of
                   .jsonl / .json, .parquet, .csv or .txt ('text' only) files,
                   or a directory written by datasets' save_to_disk; read
                   with Hugging Face datasets from local files only (fields
                   below; details: datarater/data/corpus.py).
                   The .npz file for data.name='npz': x_train, y_train,
                   x_test, y_test [, source_train, source_test, corrupted_train,
                   x_meta, y_meta, x_valid, y_valid]. Inputs must be real and finite as float32 (the
                   dtype they are trained in: |x| <= 3.4e38); labels are class
                   indices 0..9999 (at most 10,000 classes); source_train holds
                   any non-negative integer ids, at most 1,024 distinct ones,
                   numbered 0..K-1 in sorted order and named 'source<id>' in
                   reports (with corruption_rates set, ids must be
                   0..len(corruption_rates)-1 instead). source_test: the test
                   rows' ids among source_train's; only with it (or on text
                   presets, where a source is a package) does summary.json
                   report a per-source test loss `test_source_loss`; otherwise
                   test rows have no source and it is null (corruption-rate
                   sources are random partitions of the pool).
data.data_dir      str. TFDS data_dir (None: TFDS default ~/tensorflow_datasets).
Fields of dataset=text / table only (other configs do not have them). 'text'
documents become windows of data.seq_len + 1 bytes cut per document (a
document's last len % (seq_len + 1) bytes are not used) in document-disjoint
train / meta / valid / test splits; 'table' holds out data.test_fraction of its
rows as test. Defaults follow stdlib_text (transformer) and npz (no synthetic
corruption: corruption_rates = ()).
data.text_field    str. 'text': the column holding each document (default 'text').
data.txt_unit      'file' | 'line'. 'text' from .txt files: a document is a whole
                   file (default; its source is its directory) or one line
                   (its source is its file).
data.tokenizer     str. 'text': '' (default) = byte-level (a document is its
                   UTF-8 bytes, vocabulary 256), or the path of a local
                   tokenizer file of the Hugging Face `tokenizers` library
                   (tokenizer.json): a document is its token ids (no special
                   tokens added), windows are data.seq_len + 1 tokens, the
                   vocabulary (model and rater) is the tokenizer's, and row
                   offsets count tokens (datarater/data/tokens.py). The
                   synthetic corruptions act on bytes, so corruption_rates
                   must be () with a tokenizer.
data.store         'memory' | 'disk'. 'text': where the windows live. 'memory'
                   (default): numpy arrays. 'disk': cut document range by range
                   into an unlinked file under TMPDIR (about the corpus's size)
                   and the train split read from it by index a batch at a time,
                   so a corpus larger than memory trains (the same arrays and
                   data fingerprint as 'memory'; corruption_rates must be ();
                   datarater/data/windows.py).
data.source_field  str. 'text' / 'table': the column naming each row's source
                   (strings or integers, numbered 0..K-1 in sorted order of
                   their values, named by them in reports). '' (default):
                   'text' takes the file (a .txt read whole: its directory;
                   a save_to_disk directory: one source), 'table' has one
                   source (or random ones with corruption_rates).
data.id_field      str. 'text': the column of each document's id, kept with the
                   document table (corpus.Documents); '' = its number.
                   'table': a column left out of the default features.
data.corrupted_field  str. 'text' / 'table': a bool (or 0/1) column of
                   ground-truth corruption, for evaluation only (AUROC,
                   detection): it goes into the rows' `corrupted` flag (OR'ed
                   with corruption_rates') and never into a training batch.
data.label_field   str. 'table' (required): the label column, integer class
                   indices 0..9999, or strings / bools numbered in sorted order.
data.feature_fields  tuple of str. 'table': the input columns, each numeric
                   with no missing value; () (default) = every numeric or bool
                   column other than the label, source, corrupted and id ones.
data.corruption_rates  tuple of numbers in [0, 1], one per source (at most
                   1,024). Its length is the number of sources K; source k is
                   corrupted at rate r_k (ScaleBiO's noisy-sources protocol).
                   () = one clean source.
data.corruption    how corrupted examples are made. Of each source k exactly
                   round(r_k n_k) examples are drawn; the `corrupted` flag
                   (ground truth for detection) marks those whose label or
                   input actually changed. Images/tabular (C classes):
                   'label_symmetric' (label replaced by a uniformly drawn
                   *different* class: every drawn example changes),
                   'label_pairflip' (label y -> y+1 mod C),
                   'label_uniform' (Meta-Weight-Net's uniform noise: the label
                   is redrawn uniformly from all C classes, so it stays the
                   true one with probability 1/C and the flagged rate is about
                   r_k (C-1)/C), 'label_flip2' (Meta-Weight-Net's flip2 noise:
                   each class has two other target classes, drawn once at
                   random with a fixed seed, the same in every run; a drawn
                   example goes to either with probability 1/2; C >= 3),
                   'feature_noise' (input replaced by uniform noise).
                   Meta-Weight-Net's code corrupts each label independently
                   with probability r (a rate in expectation); here the count
                   per source is exact. Text (the flag marks the drawn
                   windows): 'random_bytes' (a fraction
                   `data.text_noise_fraction` of bytes replaced), 'shuffle'
                   (bytes of the sequence permuted), 'repeat' (sequence
                   replaced by a short chunk repeated), and three like the
                   DataRater paper's findings: 'mojibake' (wrong encoding:
                   UTF-8 read as CP1252 and re-encoded, then the text written
                   as UTF-16-LE or EBCDIC cp037, 1/2 each, and read as bytes),
                   'ocr' (OCR confusions rn->m, m->rn, l->1, O->0, I->l, e->c
                   and dropped word gaps, each site at rate
                   `data.text_noise_fraction`; the window keeps its length by
                   pulling in its following text), 'boilerplate' (irrelevant
                   content: a licence-like header repeated, from a random
                   offset); 'mixed' = one kind per source: source k gets
                   MIXED_KINDS[k % 5] = ('shuffle', 'ocr', 'boilerplate',
                   'mojibake', 'random_bytes')[k % 5], subtlest kind on the
                   least corrupted source (at the default rates source 0 is
                   clean, so 'shuffle' is then unused). Exact definitions:
                   datarater/data/corruption.py. Each source's kind is in
                   summary.json's `source_corruption`, and scoring methods
                   report `kind_mean_score` (mean score per kind, and of the
                   clean rows). 'none'.
data.imbalance     float >= 1. Long-tail factor for classification: class c
                   keeps a fraction imbalance**(-c/(C-1)) of its train examples
                   (1 = balanced). Imbalance drops examples; it sets no flag.
data.meta_mode     'clean': the meta split is a small trusted slice held out
                   before corruption (L2RW / Meta-Weight-Net protocol; used when
                   an npz supplies x_meta/y_meta). 'noisy': a held-out slice of
                   the same (corrupted) training distribution (DataRater paper).
data.meta_size     int. Examples in the meta split (ignored when npz gives x_meta).
                   With data.imbalance > 1 and meta_mode 'clean', the meta split
                   is meta_size // C rows of every class, drawn before the
                   imbalance (Meta-Weight-Net's protocol; 100 on digits = 10 per class).
data.valid_size    number >= 0. The validation split: held-out rows of the
                   training distribution, carved from the training pool after
                   the meta split and corrupted exactly like the training rows
                   (no clean information; data.valid_mode='clean' changes
                   that), disjoint from train, meta and test; no method
                   trains on it. Every validation decision reads it:
                   early stopping (summary phases.<phase>.early_stopped), the
                   net compute gain's target, method.discard_fraction='auto'.
                   In (0, 1): a fraction of the pool (after the meta split and
                   the long-tail imbalance), at least min(50, pool / 4) rows;
                   a whole number >= 1: that many rows (text: per source, a
                   fraction of data.examples_per_source, or the rows split
                   over the sources). Default 0.1. An npz's x_valid / y_valid
                   replace it. 0 = no validation split: early stopping and the
                   compute gain are then reported as null with the reason, and
                   discard_fraction='auto' is refused.
data.valid_mode    'noisy' (default): the validation rows are corrupted like
                   the training rows (no clean information). 'clean': the same
                   rows as they were before the corruption: clean evaluation
                   rows, like the test split, that no method trains on; the
                   decisions above then use clean information (a suite's
                   header says so). Ignored when an npz gives x_valid
                   (summary.json's `valid_mode` is then 'given').
data.test_fraction float in (0, 1). Fraction of digits (of a 'table's rows, of a
                   'text' source's windows, in whole documents) held out as test.
data.seq_len       int. Tokens per text example (inputs; targets are shifted).
data.examples_per_source  int. Text sequences drawn per source for train (presets;
                   'text' trains on every window of its train documents).
data.text_packages tuple of stdlib top-level packages, one per source, for
                   stdlib_text (length must equal len(corruption_rates)).
data.text_noise_fraction  float in [0, 1]. 'random_bytes': the fraction of bytes
                   replaced (each byte independently). 'ocr': the probability that
                   each confusable site (rn, m, l, O, I, e, a space between two
                   non-space characters) is confused (each site independently).
                   Also under 'mixed', for its sources of those kinds.
data.max_examples  int. Cap on train examples read from TFDS/npz, on documents
                   read for 'text', on rows read for 'table' (first in file
                   order; 0 = all).
data.generator_seed  int >= -1. MNIST-1D only: the seed of the mnist1d
                   package's generator. -1 (default) = the run's `seed`, so
                   each seed draws its own data set; 42 = the package default,
                   the data set the MNIST-1D paper's numbers are on (the
                   run's seed then still seeds corruption, meta split, init
                   and order).

model.name         'mlp' | 'cnn' | 'resnet' | 'wrn' | 'transformer' (text); set it with
                   the config arg `model=...` so that `model.kwargs` matches.
model.kwargs       dict: the model's own fields (datarater/models/<name>.py),
                   each a positive integer or a tuple of them:
                   mlp: hidden (tuple of widths); cnn: channels, hidden;
                   resnet: depth (6n+2, ResNet-32 = 32), width (first stage);
                   wrn: depth (6n+4), widen (k; WRN-28-10 = depth 28, widen 10);
                   transformer: d_model, num_layers, num_heads, mlp_ratio.
                   Output size, vocabulary and length come from the dataset.

optimizer.name     'sgd' | 'momentum' | 'nesterov' | 'adam' | 'adamw'.
optimizer.learning_rate  float. Peak learning rate.
optimizer.schedule 'constant' | 'cosine' | 'warmup_cosine' | 'step'.
optimizer.warmup_steps   int. Linear warm-up for 'warmup_cosine'.
optimizer.step_boundaries  tuple of fractions in (0, 1), increasing: for 'step',
                   the learning rate is multiplied by step_factor at each
                   boundary * num_steps (Meta-Weight-Net's MW-Net.py: epochs
                   80 and 100 of 120 = (80/120, 100/120)).
optimizer.step_factor    float in (0, 1]. The 'step' schedule's multiplier.
optimizer.momentum float. For 'momentum' (SGD with plain heavy-ball momentum,
                   optax.sgd(nesterov=False) = PyTorch's SGD(momentum=m), as
                   Meta-Weight-Net's MW-Net.py) / 'nesterov' (Nesterov momentum,
                   as its train_WRN-28-10_Meta_PGC.py and long-tail script).
optimizer.weight_decay   float. Decoupled (adamw) or added L2 (others).
optimizer.grad_clip      float. Global-norm clipping (0 = off).
optimizer.eps_root float. Adam's eps inside the square root; keep it > 0 when
                   differentiating through Adam updates (d sqrt(v)/dv is
                   infinite at v = 0).

method.name        which method module runs: datarater/methods/<name>.py.

Filtered retraining (the methods that filter: datarater, storm, score_filter,
aum, el2n, forgetting, cartography, confident_learning; one filter for all,
datarater/methods/_filter.py). Scores are higher = more worth keeping, as in
scores_train.npy.
method.discard_fraction  'auto' (default) or rho in [0, 1): the fraction of the
                   candidate examples discarded, the lowest-scored (0 = no
                   filtered retraining, where a method allows it). 'auto'
                   chooses it without the test set and without ground truth:
                   the training rows' score distribution gives an estimated
                   fraction f of low-scored rows (the low component's weight
                   of a two-Gaussian fit); two filtered arms train, one
                   dropping f and one f / 2 (per_batch mode adds two
                   standard deviations of the batch-to-batch share,
                   `_filter.per_batch_fraction`), and the arm with the best
                   final validation accuracy among them and the paired
                   uniform arm is the result (ties: the one that discards
                   less); summary.json: discard_fraction (the one used),
                   discard_fraction_auto (estimate, arms, choice, why).
                   Needs the uniform arm and data.valid_size > 0. Set it with
                   `discard_fraction_field()` in a config file (a field that
                   takes 'auto' or a number from the command line).
method.filter_mode 'per_batch': each step draws ceil(B / (1 - rho))
                   candidates and trains on the B best-scored (DataRater's
                   online filter) | 'dataset': the rho lowest-scored training
                   rows are dropped once and batches of B are drawn uniformly
                   from the rest. Default: 'per_batch', except STORM ('dataset').

Config arg (after ':' in --config=configs/x.py:...): dataset=<name> (default
digits), model=<name> (default: the dataset's preset), smoke (a few steps and a
tiny model, for tests).
"""

from __future__ import annotations

import ml_collections
from ml_collections import config_dict

from datarater.data import TEXT_TFDS

# Default kwargs of each model (config.model.kwargs), and their smoke sizes.
MODEL_KWARGS = {
    'mlp': dict(hidden=(256, 256)),
    'cnn': dict(channels=(32, 64), hidden=128),
    'resnet': dict(depth=32, width=16),
    'wrn': dict(depth=28, widen=10),
    'transformer': dict(d_model=64, num_layers=2, num_heads=4, mlp_ratio=4),
}
SMOKE_MODEL_KWARGS = {
    'mlp': dict(hidden=(32,)),
    'cnn': dict(channels=(8, 16), hidden=32),
    'resnet': dict(depth=8, width=8),
    'wrn': dict(depth=10, widen=1),
    'transformer': dict(d_model=32, num_layers=1, num_heads=2, mlp_ratio=2),
}


def model_config(name: str, smoke: bool = False, **overrides) -> ml_collections.ConfigDict:
  """{'name': name, 'kwargs': defaults (smoke sizes if smoke) updated by overrides}."""
  if name not in MODEL_KWARGS:
    raise ValueError(f'config arg: model={name!r} is not one of {sorted(MODEL_KWARGS)}')
  kwargs = {**MODEL_KWARGS[name], **(SMOKE_MODEL_KWARGS[name] if smoke else {}), **overrides}
  return ml_collections.ConfigDict({'name': name, 'kwargs': kwargs})


def discard_fraction_field(default='auto'):
  """config.method.discard_fraction: a field that holds 'auto' or a number (ml_collections
  otherwise fixes a field's type to its default's, and --config.method.discard_fraction=0.5
  would be refused)."""
  return config_dict.FieldReference(default, field_type=object)


def parse_arg(arg: str | None, **extra):
  """Parses 'dataset=digits,smoke' into a ConfigDict with typed defaults.

  A bare key (e.g. 'smoke') sets a boolean default to True. Unknown keys raise.

  Args:
    arg: the text after ':' in `--config=configs/x.py:...` (may be empty).
    **extra: a config file's own keys and their defaults (types are kept),
      besides the shared dataset='digits', model='' (the preset's), smoke=False.

  Returns:
    ml_collections.ConfigDict with one field per key.
  """
  defaults = dict(dataset='digits', model='', smoke=False, **extra)
  out = ml_collections.ConfigDict(defaults)
  for part in filter(None, (arg or '').split(',')):
    key, eq, value = part.partition('=')
    if key not in defaults:
      raise ValueError(f'config arg: unknown key {key!r}; allowed: {sorted(defaults)}')
    default = defaults[key]
    if not eq:
      if not isinstance(default, bool):
        raise ValueError(f'config arg: {key!r} needs a value ({key}=...)')
      out[key] = True
    elif isinstance(default, bool):
      out[key] = value.lower() in ('1', 'true', 'yes')
    else:
      out[key] = type(default)(value)
  return out


def base_config(arg) -> ml_collections.ConfigDict:
  """The shared base config for a parsed arg (fields documented in this module's docstring)."""
  dataset, smoke = arg.dataset, arg.smoke
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.num_steps = 1500
  c.batch_size = 64
  c.eval_batch_size = 256
  c.log_every = 50
  c.eval_every = 100
  c.eval_test = 'every'
  c.checkpoint_every = 500
  c.paired_arms = True
  c.steps_per_dispatch = 0
  c.mesh = ml_collections.ConfigDict({'population': 1})
  c.nonfinite = 'stop'

  c.data = ml_collections.ConfigDict()
  c.data.name = dataset
  c.data.path = ''
  c.data.data_dir = ''
  c.data.corruption_rates = (0.0, 0.2, 0.4, 0.6, 0.8)
  c.data.corruption = 'label_symmetric'
  c.data.imbalance = 1.0
  c.data.meta_mode = 'clean'
  c.data.meta_size = 100
  c.data.valid_size = 0.1
  c.data.valid_mode = 'noisy'
  c.data.test_fraction = 0.2
  c.data.seq_len = 64
  c.data.examples_per_source = 2000
  c.data.text_packages = ('asyncio', 'email', 'unittest', 'xml', 'multiprocessing')
  c.data.text_noise_fraction = 0.5
  c.data.max_examples = 0
  c.data.generator_seed = -1

  model = 'mlp'

  c.optimizer = ml_collections.ConfigDict()
  c.optimizer.name = 'adam'
  c.optimizer.learning_rate = 1e-3
  c.optimizer.schedule = 'constant'
  c.optimizer.warmup_steps = 0
  c.optimizer.step_boundaries = ()
  c.optimizer.step_factor = 0.1
  c.optimizer.momentum = 0.9
  c.optimizer.weight_decay = 0.0
  c.optimizer.grad_clip = 0.0
  c.optimizer.eps_root = 1e-8

  c.method = ml_collections.ConfigDict()
  c.method.name = 'uniform'

  if dataset in ('stdlib_text', 'text') or dataset in TEXT_TFDS:
    c.data.corruption = 'random_bytes'
    model = 'transformer'
    c.batch_size = 32
    c.eval_batch_size = 128
    if dataset != 'stdlib_text':
      c.data.corruption_rates = ()
  elif dataset in ('mnist', 'fashion_mnist'):
    model = 'cnn'
    c.data.meta_size = 1000
    c.num_steps = 2000
  elif dataset in ('cifar10', 'cifar100'):
    model = 'resnet'
    c.data.meta_size = 1000
    c.batch_size = 128
    c.num_steps = 20000
    c.optimizer.name = 'nesterov'
    c.optimizer.learning_rate = 0.1
    c.optimizer.schedule = 'cosine'
    c.optimizer.weight_decay = 5e-4
  elif dataset == 'npz':
    c.data.corruption_rates = ()
  if dataset in ('text', 'table'):   # your own corpus (datarater/data/corpus.py)
    c.data.corruption_rates = ()
    c.data.source_field = ''
    c.data.corrupted_field = ''
    c.data.id_field = ''
    if dataset == 'text':
      c.data.text_field = 'text'
      c.data.txt_unit = 'file'
      c.data.tokenizer = ''
      c.data.store = 'memory'
    else:
      c.data.label_field = ''
      c.data.feature_fields = ()

  if smoke:
    c.num_steps = 6
    c.log_every = 2
    c.eval_every = 3
    c.checkpoint_every = 3
    c.batch_size = 16
    c.eval_batch_size = 64
    c.data.seq_len = 32
    c.data.examples_per_source = 40
  c.model = model_config(arg.model or model, smoke)
  return c
