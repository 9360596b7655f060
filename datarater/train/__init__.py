"""The training framework: state, the loop, evaluation, checkpoints, compute
ledger, sharding and the non-finite guard. It imports no method module; the
runner above (datarater.run) looks methods up by name and calls `run_pipeline`.
"""

from datarater.train.context import Context, phase_key
from datarater.train.evaluation import evaluate, map_split
from datarater.train.loop import PhaseResult, train_phase
from datarater.train.pipeline import Phase, Pipeline, run_pipeline, single
from datarater.train.rundir import RunDir
from datarater.train.state import Method, TrainState
from datarater.train.task import Task, make_task

__all__ = ['Context', 'Method', 'Phase', 'PhaseResult', 'Pipeline', 'RunDir', 'Task', 'TrainState',
           'evaluate', 'make_task', 'map_split', 'phase_key', 'run_pipeline', 'single',
           'train_phase']
