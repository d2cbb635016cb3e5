"""nn: layers, losses, mini-batches and a training loop, built on tape's public API.

Example:
    >>> import numpy as np, nn
    >>> model = nn.Sequential([nn.Dense(16, use_bias=False, seed=0), nn.BatchNorm(), nn.ReLU(),
    ...                        nn.Dense(3, seed=1)])
    >>> logits = model(np.ones((4, 5)), training=True)
    >>> nn.softmax(logits).shape
    (4, 3)
    >>> round(float(nn.softmax_cross_entropy(logits, np.array([0, 1, 2, 0]))), 4) > 0
    True
"""

from nn import datasets
from nn.data import MiniBatches, accuracy
from nn.layers import initializers, regularizers
from nn.layers.activations import (
    Activation,
    LeakyReLU,
    LogSoftmax,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
    elu,
    gelu,
    leaky_relu,
    log_softmax,
    relu,
    sigmoid,
    softmax,
    softplus,
    tanh,
)
from nn.layers.batchnorm import BatchNorm, batch_norm, batch_norm_with_stats
from nn.layers.core import Dense, Sequential, seeded
from nn.layers.dropout import Dropout
from nn.layers.layernorm import LayerNorm, layer_norm
from nn.layers.module import Module
from nn.layers.population import Population
from nn.layers.reshaping import Flatten
from nn.losses import mean_squared_error, sigmoid_binary_cross_entropy, softmax_cross_entropy
from nn.runs.babysitter import Babysitter, RunHistory
from nn.seeding import set_seed
from nn.training import metrics
from nn.training.callbacks import EarlyStopping, RestoreBest, TerminateOnNaN
from nn.training.file_callbacks import CSVLogger, ModelCheckpoint
from nn.training.history import History
from nn.training.loop import Callback, TrainingState, evaluate, fit, train_step
from nn.training.rate_callbacks import LearningRateScheduler, ReduceLROnPlateau
from nn.training.saving import load_checkpoint, save_checkpoint
from nn.tuning.culling import CullResult, cull
from nn.tuning.pbt import (
    HyperparameterSchedule,
    PBTResult,
    copy_member,
    plot_pbt,
    population_based_training,
)

__all__ = [
    "Activation", "Babysitter", "BatchNorm", "CSVLogger", "Callback", "Dense", "Dropout",
    "EarlyStopping", "Flatten", "History", "LearningRateScheduler", "LeakyReLU", "LogSoftmax",
    "MiniBatches", "ModelCheckpoint", "Module", "Population", "ReLU", "ReduceLROnPlateau",
    "RestoreBest", "RunHistory", "Sequential", "Sigmoid", "Softmax", "Tanh", "TerminateOnNaN",
    "TrainingState", "accuracy", "batch_norm", "batch_norm_with_stats", "datasets", "elu",
    "evaluate", "fit", "gelu", "initializers", "leaky_relu", "load_checkpoint", "log_softmax",
    "mean_squared_error", "metrics", "relu", "save_checkpoint", "seeded", "set_seed", "sigmoid",
    "sigmoid_binary_cross_entropy", "softmax", "softmax_cross_entropy", "softplus", "tanh",
    "train_step",
    "CullResult", "PBTResult", "copy_member", "cull", "population_based_training",
    "HyperparameterSchedule", "plot_pbt",
]
__all__ += ["LayerNorm", "layer_norm", "regularizers"]
