"""linmeta: closed forms and simulations of meta-learning on deep linear models.

The engine (numpy by default, torch optional) computes the MAML-family
meta-objective of deep linear networks and its exact gradient in batched
closed form; ``linmeta.theory`` holds the closed-form predictions and
``linmeta.experiments`` the paper reproductions that compare the two.
"""
__version__ = "0.1.0"

from .inner_loop import InnerLoop
from .losses import LogisticLoss, QuadraticLoss, SquaredLoss, sample_moments
from .meta import MetaGradient, adapt, adapted_map, meta_loss, meta_value_and_grad, pre_adaptation_loss
from .models import end_to_end, init_deep_linear
from .preconditioners import KFO, Identity, MetaCurvature, MetaSGD
from .tasks import BinaryClassification, GaussianRegression, MetaBatch, TaskBatch, TaskMixture, meta_batch

__all__ = [
    "InnerLoop", "LogisticLoss", "QuadraticLoss", "SquaredLoss", "sample_moments", "MetaGradient", "adapt", "adapted_map",
    "meta_loss", "meta_value_and_grad", "pre_adaptation_loss", "end_to_end", "init_deep_linear", "KFO",
    "Identity", "MetaCurvature", "MetaSGD", "BinaryClassification", "GaussianRegression", "MetaBatch",
    "TaskBatch", "TaskMixture", "meta_batch", "__version__",
]
