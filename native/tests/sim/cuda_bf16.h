// CUDA's bfloat16 header for the CUDA simulator: the conversions live in cuda_fp16.h here.
#ifndef PLORA_SIM_CUDA_BF16_H
#define PLORA_SIM_CUDA_BF16_H

#include "cuda_fp16.h"

#endif
