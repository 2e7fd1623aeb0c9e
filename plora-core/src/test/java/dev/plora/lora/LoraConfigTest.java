package dev.plora.lora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class LoraConfigTest {
  @Test
  void defaultsAndScalingFollowPeft() {
    LoraConfig c = LoraConfig.builder().build();
    assertEquals(8, c.r());
    assertEquals(1f, c.scaling());
    assertEquals(0.5f, LoraConfig.builder().r(32).alpha(16).build().scaling());
    assertEquals(16f / 4f, LoraConfig.builder().r(16).alpha(16).rsLora(true).build().scaling(), 1e-6);
  }

  @Test
  void everyBadFieldIsNamed() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> LoraConfig.builder().r(0).alpha(Float.NaN).dropout(1f).init(null).build());
    for (String field : new String[] {"r: expected >= 1, got 0", "alpha:", "NaN", "dropout:", "got 1.0", "init:"}) {
      assertTrue(e.getMessage().contains(field), e.getMessage());
    }
  }
}
