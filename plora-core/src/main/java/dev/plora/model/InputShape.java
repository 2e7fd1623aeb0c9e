package dev.plora.model;

/**
 * The shape of a model's input: {@code batch} sequences of {@code sequence} tokens, so
 * {@link #rows()} = batch·sequence rows of activations. Models without sequences use a sequence
 * of 1 ({@link #ofRows}). An {@link ActivationPlan} is made for one shape.
 */
public record InputShape(int batch, int sequence) {
  public InputShape {
    if (batch <= 0 || sequence <= 0 || (long) batch * sequence > Integer.MAX_VALUE) {
      throw new IllegalArgumentException("input shape: expected batch > 0 and sequence > 0 with batch·sequence <= "
          + Integer.MAX_VALUE + ", got batch " + batch + ", sequence " + sequence);
    }
  }

  /** {@code rows} inputs without a sequence dimension. */
  public static InputShape ofRows(int rows) {
    return new InputShape(rows, 1);
  }

  /** Rows of a {@code [rows, features]} activation: batch·sequence. */
  public int rows() {
    return batch * sequence;
  }
}
