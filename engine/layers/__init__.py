"""Model building blocks on ``kernels``: linear, norm, rotary, attention, embedding."""

from engine.layers.activation import SiluAndMul
from engine.layers.attention import KVCache, PagedAttention
from engine.layers.embedding import LMHead, VocabEmbedding
from engine.layers.layout import use_column_major_weights
from engine.layers.linear import (
    Linear,
    MergedLinear,
    QKVLinear,
    ShardId,
    WeightLoader,
    default_weight_loader,
    get_weight_loader,
    set_weight_loader,
    use_skinny_kernels,
)
from engine.layers.norm import RMSNorm
from engine.layers.rotary import RotaryEmbedding

__all__ = [
    "KVCache",
    "LMHead",
    "Linear",
    "MergedLinear",
    "PagedAttention",
    "QKVLinear",
    "RMSNorm",
    "RotaryEmbedding",
    "ShardId",
    "SiluAndMul",
    "VocabEmbedding",
    "WeightLoader",
    "default_weight_loader",
    "get_weight_loader",
    "set_weight_loader",
    "use_column_major_weights",
    "use_skinny_kernels",
]
