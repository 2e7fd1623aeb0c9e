package dev.plora.tensor;

/** Where a tensor's memory lives. */
public enum Device {
  CPU,
  CUDA
}
