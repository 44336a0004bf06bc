"""jnn's layers, one file per family as in torch.nn.modules."""

from jnn.modules.activation import ReLU, Sigmoid, Softmax, Tanh
from jnn.modules.batchnorm import BatchNorm1d, BatchNorm2d
from jnn.modules.container import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from jnn.modules.conv import Conv2d
from jnn.modules.dropout import Dropout
from jnn.modules.flatten import Flatten
from jnn.modules.linear import Identity, Linear
from jnn.modules.module import Buffer, Module, Parameter
from jnn.modules.pooling import MaxPool2d

__all__ = [
    "Module", "Parameter", "Buffer",
    "Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict",
    "Identity", "Linear", "Conv2d", "MaxPool2d", "BatchNorm1d", "BatchNorm2d", "Dropout", "Flatten",
    "ReLU", "Sigmoid", "Tanh", "Softmax",
]
