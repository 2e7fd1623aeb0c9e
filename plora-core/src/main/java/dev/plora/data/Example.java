package dev.plora.data;

/**
 * One training or evaluation example: token ids and, aligned with them, the labels (Hugging
 * Face's convention: the label of position t is the token at t; −100 where nothing is scored).
 */
public record Example(int[] inputIds, int[] labels) {}
