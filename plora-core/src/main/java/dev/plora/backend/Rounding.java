package dev.plora.backend;

/** How a merge rounds fp32 results into 16-bit storage. */
public enum Rounding {
  /** Round to nearest even. */
  NEAREST(0),
  /**
   * Round up with probability equal to the dropped fraction (Philox-driven, BF16 only): unbiased,
   * so many tiny updates accumulate instead of rounding away. The default for unloading.
   */
  STOCHASTIC(1);

  private final int code;

  Rounding(int code) {
    this.code = code;
  }

  /**
   * The value of {@code enum plora_rounding} in the native ABI (never the ordinal); each backend
   * checks at load that its library agrees.
   */
  public int code() {
    return code;
  }
}
