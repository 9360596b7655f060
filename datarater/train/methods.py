"""Method registry: config.method.name -> the module that implements it.

A method module supplies `make(config, task, dataset) -> Method` (see
datarater.train.state). A module that needs several phases (meta-training,
reference models, retraining) also supplies `run(ctx, task, method) -> summary
dict`; otherwise the loop runs one phase with `make`'s Method. To add a method,
write one module and add one line here.
"""

from datarater.bilevel import scalebio_method
from datarater.meta import datarater
from datarater.meta import l2rw
from datarater.meta import mwn
from datarater.weighting import static_mixture, uniform
from datarater.weighting import (chi2_dro_method, cvar_method, doremi_method, group_dro_method,
                                  infobatch_method, kl_dro_method, loss_reweight_method)

METHODS = {
    'uniform': uniform,
    'datarater': datarater,
    'l2rw': l2rw,
    'mwn': mwn,
    'static_mixture': static_mixture,
    'scalebio': scalebio_method,
    'kl_dro': kl_dro_method,
    'cvar': cvar_method,
    'chi2_dro': chi2_dro_method,
    'loss_reweight': loss_reweight_method,
    'group_dro': group_dro_method,
    'doremi': doremi_method,
    'infobatch': infobatch_method,
}
