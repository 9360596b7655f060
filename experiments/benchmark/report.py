"""The benchmark's outputs: benchmark.json, benchmark.md (tables) and modes_vs_T.png."""

from __future__ import annotations

import json
import os
from typing import Any, Dict

from datarater.train.rundir import write_atomic
from experiments.benchmark import targets as targets_lib
from experiments.benchmark.core import SECTIONS, default_sections

FILES = ('benchmark.json', 'benchmark.md', 'modes_vs_T.png')


def format_markdown(result: Dict[str, Any]) -> str:
  """benchmark.md: setup, targets, and one table per section."""
  m = result['machine']
  peers = result.get('peers', {})
  # This invocation's --peers (kept sections may hold an earlier invocation's peer results).
  ran_peers = result.get('peers_run', not peers.get('skipped'))
  flags = (' --quick' if result['quick'] else '') + (' --peers' if ran_peers else '')
  if result.get('sections', SECTIONS) != list(default_sections(result['quick'])):
    flags += ' --sections=' + ','.join(result['sections'])
  lines = ['# Cost benchmark', '',
           f"`python -m experiments.benchmark{flags}` on "
           f"{m['device']} ({m['cpu_count']} CPUs, {m['platform']}), jax {m['jax']}, torch "
           f"{m['torch'] or 'not installed'}; load average at start "
           f"{m['load_average'][0] if m['load_average'] else 'n/a'}. Times are medians of "
           f"{result['repeats']} blocks after compilation, as ratios to the plain step of the "
           'same model and batch timed in alternating blocks in the same run.', '',
           '## Targets', '', '| target | figure | required | status |', '|---|---|---|---|']
  lines += [f"| {t['name']} | {t['figure']} | {t['target']} | {'met' if t['met'] else 'NOT MET'} |"
            for t in result['targets']]
  if 'modes' in result:
    lines += _modes_lines(result)
  if 'methods' in result:
    lines += ['', '## Methods: step / uniform step (digits preset, same MLP and batch)', '',
              '| method | phase timed | time ratio | FLOPs ratio | target |',
              '|---|---|---|---|---|']
    lines += [f"| {r['method']} | {r['phase']} | {r['ratio']:.2f} | {r['flops_ratio']:.2f} | "
              f"{r['target'] or '-'} |" for r in result['methods']]
  if 'scoring' in result:
    s = result['scoring']
    lines += ['', '## Rater scoring throughput', '',
              f"{s['scored_per_s']:.3g} examples scored/s (batches of {s['score_batch']}) vs "
              f"{s['trained_per_s']:.3g} examples trained/s by the plain step: "
              f"{s['ratio']:.1f}x."]
  if 'time_to_result' in result:
    lines += _time_to_result_lines(result['time_to_result'])
  if 'corpus' in result:
    lines += _corpus_lines(result['corpus'])
  for section, m in result.get('kept', {}).items():
    lines += ['', f"Section {section!r} is kept from an earlier run (not re-run by this "
              f"invocation's --sections), on {m['device']}, load average at its start "
              f"{m['load_average'][0] if m.get('load_average') else 'n/a'}."]
  if result.get('notes'):
    lines += ['', '## Where a target is missed', '', result['notes']]
  return '\n'.join(lines) + '\n'


def _modes_lines(result) -> list:
  """The meta-gradient modes table and the PyTorch step peer."""
  peers = result['peers']
  lines = ['', '## Meta-gradient modes vs T', '', f'![time and memory vs T]({FILES[2]})', '',
           '| mode | T | time / inner step / plain | FLOPs / inner step / plain | temp MiB | '
           'compile s | max abs grad diff vs reverse |', '|---|---|---|---|---|---|---|']
  for r in result['modes']['rows']:
    lines.append(f"| {r['mode']} | {r['T']} | {r['ratio_per_inner_step']:.2f} | "
                 f"{r['flops_ratio_per_inner_step']:.2f} | {(r['temp_bytes'] or 0) / 2**20:.2f} | "
                 f"{r['compile_s']:.1f} | {r['grad_max_abs_diff_vs_reverse']:.1e} |")
  lines += ['', '## Peers (PyTorch): one-step meta-gradient', '']
  if peers.get('skipped'):
    return lines + [peers['skipped']]
  lines += ['| one-step L2RW meta-gradient, hidden | batch | ours ms | torch.func ms | '
            'torch / ours |', '|---|---|---|---|---|']
  return lines + [f"| {r['hidden']} | {r['batch_size']} | {r['ours_s'] * 1e3:.2f} | "
                  f"{r['torch_s'] * 1e3:.2f} | {r['speedup']:.2f} |" for r in peers['step']]


def _time_to_result_lines(ttr) -> list:
  """The time-to-result table and, with --peers, the L2RW job against its PyTorch peer."""
  lines = ['', '## Time to result (whole processes)', '',
           f"Median of {ttr['pairs']} pairs (cold: an empty compilation cache; warm: the same "
           'command again, new run directory). Floor: `python -c "import jax, flax, optax"` '
           "(timed once in each of the job's pairs; median in the table, "
           f"{ttr['import_s']:.2f} s at the section's start) plus the job's training steps, each "
           'phase fused in one jitted lax.scan over its batches already on the device '
           '(compilation not counted; `time_to_result.fused_seconds`). '
           f"`python -m experiments.train --help`: {ttr['help_s']:.2f} s.", '',
           '| job | steps fused s | imports s | floor s | whole process, cold s | warm s | '
           'cold / floor | warm / floor |', '|---|---|---|---|---|---|---|---|']
  lines += [f"| {r['job']} | {r['fused_s']:.2f} | {r.get('import_s', ttr['import_s']):.2f} | "
            f"{r['floor_s']:.2f} | {r['cold_s']:.1f} | {r['warm_s']:.1f} | "
            f"{r['cold_ratio']:.2f} | {r['warm_ratio']:.2f} |" for r in ttr['jobs']]
  lines += ['', 'Commands: ' + '; '.join(f"`python {r['command']}`" for r in ttr['jobs'])]
  e2e = ttr.get('peer')
  if e2e:
    lines += ['', f"L2RW job ({e2e['steps']} steps, noisy digits npz, MLP "
              f"64-{e2e['hidden']}-{e2e['hidden']}-10, B={e2e['batch_size']}, Adam, evaluation "
              'every 100 steps) against the same job in PyTorch torch.func, whole processes in '
              'alternating pairs (ours with a warm cache):', '',
              '| pair | ours s | torch.func s | torch / ours |', '|---|---|---|---|']
    lines += [f"| {i + 1} | {r['ours_s']:.1f} | {r['torch_s']:.1f} | {r['speedup']:.2f} |"
              for i, r in enumerate(e2e['pairs'])]
  return lines


def _corpus_lines(c) -> list:
  """The corpus-scoring table: peak RSS and throughput of `experiments.score` processes."""
  sizes = ', '.join(f"{name} {v['documents']} documents ({v['text_mb']:.0f} MB of text, "
                    f"{v['file_mb']:.0f} MB .jsonl)" for name, v in c['corpora'].items())
  lines = ['', '## Corpus scoring (`experiments.score`, issue #20)', '',
           'Whole `python -m experiments.score` processes (default --shard_size=1024 and '
           '--batch_size=256, 1 device per process) of a tiny DataRater text run (smoke config, '
           f"data.seq_len={c['seq_len']}) on two corpora of the same documents ({c['base_documents']} "
           'installed packages\' .py files cycled): ' + sizes + '. Wall time counts the whole '
           'process (start, imports, reading the corpus into datasets\' Arrow cache, compiling, '
           'scoring, writing the scores); peak RSS is each process\'s `ru_maxrss`, read by a '
           f"wrapper process that runs only it. Peak RSS large / small: {c['rss_ratio']:.2f} "
           f"(target <= {c['rss_target']}).", '',
           '| corpus | processes | documents | windows | wall s | documents/s | windows/s | '
           'peak RSS MiB (per process) |', '|---|---|---|---|---|---|---|---|']
  return lines + [f"| {r['corpus']} | {r['processes']} | {r['documents']} | {r['windows']} | "
                  f"{r['wall_s']:.1f} | {r['docs_per_s']:.0f} | {r['windows_per_s']:.0f} | "
                  f"{', '.join(f'{x:.0f}' for x in r['peak_rss_mib'])} |" for r in c['rows']
                  ] + _corpus_train_lines(c)


def _corpus_train_lines(c) -> list:
  """The training rows of the corpus section (results from before them have none)."""
  if 'train_rows' not in c:
    return []
  return ['', f"Training on the same corpora: whole `python -m experiments.train` processes "
          f"(uniform, dataset=text, default model, {c['train_steps']} steps, small meta / valid "
          "/ test splits), peak RSS as above. data.store='disk' cuts the windows into a file and "
          "reads batches from it by index; 'memory' holds every window in numpy arrays. Wall times "
          "include the persistent compilation cache's effect (the first row fills it). Peak RSS "
          f"large / small on disk: {c['train_rss_ratio']:.2f} (target <= {c['rss_target']}).", '',
          '| corpus | data.store | wall s | peak RSS MiB |', '|---|---|---|---|'] + [
              f"| {r['corpus']} | {r['store']} | {r['wall_s']:.1f} | {r['peak_rss_mib']:.0f} |"
              for r in c['train_rows']]


def plot_modes(result: Dict[str, Any], path: str) -> None:
  """PNG: meta-gradient time per inner step / plain step and temp memory vs T, per mode."""
  from datarater.report.plots import pyplot
  plt = pyplot()
  fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(10, 3.8))
  rows = result['modes']['rows']
  for mode in dict.fromkeys(r['mode'] for r in rows):
    mine = [r for r in rows if r['mode'] == mode]
    ts = [r['T'] for r in mine]
    ax_t.plot(ts, [r['ratio_per_inner_step'] for r in mine], marker='o', label=mode)
    ax_m.plot(ts, [(r['temp_bytes'] or 0) / 2**20 for r in mine], marker='o', label=mode)
  for ax in (ax_t, ax_m):
    ax.set_xscale('log', base=2)
    ax.set_xlabel('T (unrolled inner steps)')
    ax.grid(alpha=0.3)
  ax_t.axhline(targets_lib.META_TARGET, color='gray', ls='--', lw=1)
  ax_t.set_ylabel('time per inner step / plain Adam step')
  ax_m.set_ylabel('XLA temp memory (MiB)')
  ax_t.legend(fontsize=8)
  fig.suptitle(f"DataRater meta-gradient, {result['machine']['device']}")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def write_report(result: Dict[str, Any], out: str) -> None:
  """Writes `FILES` into the existing folder `out`: the result as JSON, its markdown, the plot."""
  json_name, md_name, png_name = FILES
  write_atomic(os.path.join(out, json_name), [json.dumps(result, indent=1)])
  write_atomic(os.path.join(out, md_name), [format_markdown(result)])
  if 'modes' in result:
    plot_modes(result, os.path.join(out, png_name))
