package dev.plora.backend;

/** How a merge rounds fp32 results into 16-bit storage. */
public enum Rounding {
  /** Round to nearest even. */
  NEAREST,
  /**
   * Round up with probability equal to the dropped fraction (Philox-driven, BF16 only): unbiased,
   * so many tiny updates accumulate instead of rounding away. The default for unloading.
   */
  STOCHASTIC
}
