"""Method registry: config.method.name -> the module that implements it.

A method module supplies `make(config, task, dataset) -> Method` (see
datarater.train.state). A module that needs several phases (meta-training,
reference models, retraining) also supplies `run(ctx, task, method) -> summary
dict`; otherwise the loop runs one phase with `make`'s Method. To add a method,
write one module and add one line here.
"""

from datarater.meta import datarater
from datarater.weighting import static_mixture, uniform

METHODS = {
    'uniform': uniform,
    'datarater': datarater,
    'static_mixture': static_mixture,
}
