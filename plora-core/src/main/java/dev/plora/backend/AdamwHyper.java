package dev.plora.backend;

/**
 * The scalars of one AdamW step, PyTorch's formula: bias corrections {@code 1 − βᵗ} as computed
 * by the caller, the gradient scale (1/accumulation × clipping factor).
 */
public record AdamwHyper(float lr, float beta1, float beta2, float eps, float weightDecay, float gradScale,
    float biasCorrection1, float biasCorrection2) {}
