"""jnn's layers, one file per family as in torch.nn.modules."""

from jnn.modules import (  # noqa: E402, I001
    activation,
    attention,
    batchnorm,
    channelshuffle,
    container,
    conv,
    distance,
    dropout,
    flatten,
    fold,
    instancenorm,
    linear,
    loss,
    module,
    normalization,
    padding,
    pixelshuffle,
    pooling,
    rnn,
    sparse,
    transformer,
    upsampling,
)
from jnn.modules.activation import *  # noqa: F403
from jnn.modules.attention import *  # noqa: F403
from jnn.modules.batchnorm import *  # noqa: F403
from jnn.modules.channelshuffle import *  # noqa: F403
from jnn.modules.container import *  # noqa: F403
from jnn.modules.conv import *  # noqa: F403
from jnn.modules.distance import *  # noqa: F403
from jnn.modules.dropout import *  # noqa: F403
from jnn.modules.flatten import *  # noqa: F403
from jnn.modules.fold import *  # noqa: F403
from jnn.modules.instancenorm import *  # noqa: F403
from jnn.modules.linear import *  # noqa: F403
from jnn.modules.loss import *  # noqa: F403
from jnn.modules.module import *  # noqa: F403
from jnn.modules.normalization import *  # noqa: F403
from jnn.modules.padding import *  # noqa: F403
from jnn.modules.pixelshuffle import *  # noqa: F403
from jnn.modules.pooling import *  # noqa: F403
from jnn.modules.rnn import *  # noqa: F403
from jnn.modules.sparse import *  # noqa: F403
from jnn.modules.transformer import *  # noqa: F403
from jnn.modules.upsampling import *  # noqa: F403

_FAMILIES = (
    activation, attention, batchnorm, channelshuffle, container, conv, distance, dropout, flatten, fold,
    instancenorm, linear, loss, module, normalization, padding, pixelshuffle, pooling, rnn, sparse, transformer,
    upsampling,
)
__all__ = [name for family in _FAMILIES for name in family.__all__]
