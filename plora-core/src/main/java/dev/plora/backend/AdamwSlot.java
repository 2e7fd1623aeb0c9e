package dev.plora.backend;

import dev.plora.tensor.Tensor;

/**
 * One tensor of a fused AdamW step: the fp32 parameter, its fp32 gradient and moments (all
 * contiguous, one shape), an optional compute-dtype copy of the parameter to refresh (any
 * leading dimension), and a learning-rate multiplier.
 */
public record AdamwSlot(Tensor param, Tensor grad, Tensor m, Tensor v, Tensor copy, float lrScale) {}
