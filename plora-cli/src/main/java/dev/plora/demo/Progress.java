package dev.plora.demo;

/** Where a demo is, for a progress display: a phase label and the fraction of its work done. */
public record Progress(String label, double fraction) {}
