// GGUF block-quantized weight formats (bit-compatible with ggml): packed block structs, scalar
// quantize/dequantize references, and the activation formats the integer dot products use.
// Q8_0 and Q4_0 weights meet activations quantized to Q8_0 blocks; K-quants meet Q8_K blocks.
#pragma once

#include <cstddef>
#include <cstdint>

namespace longqa::kernels {

constexpr int kQK = 32;    // elements per Q8_0 / Q4_0 block
constexpr int kQKK = 256;  // elements per K-quant super-block

#pragma pack(push, 1)
struct BlockQ8_0 {
  uint16_t d;  // F16 scale
  int8_t qs[kQK];
};
struct BlockQ4_0 {
  uint16_t d;           // F16 scale
  uint8_t qs[kQK / 2];  // element j in the low nibble of byte j, element j + 16 in the high nibble
};
struct BlockQ4_K {
  uint16_t d;           // F16 scale of the 6-bit sub-block scales
  uint16_t dmin;        // F16 scale of the 6-bit sub-block mins
  uint8_t scales[12];   // 8 scales and 8 mins, 6 bits each
  uint8_t qs[kQKK / 2]; // per 64 elements: 32 bytes, low nibbles first 32, high nibbles next 32
};
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[kQKK / 8];  // fifth bits
  uint8_t qs[kQKK / 2];
};
struct BlockQ6_K {
  uint8_t ql[kQKK / 2];     // low 4 bits
  uint8_t qh[kQKK / 4];     // high 2 bits
  int8_t scales[kQKK / 16]; // one per 16 elements
  uint16_t d;               // F16 super-block scale
};
// Block i of eight Q4_0 rows interleaved (never stored in files: the loader rearranges a matrix's
// rows in place, eight at a time, for the decode kernels, see interleave_q4_0). The eight rows'
// scales, then their level bytes in 4-byte units: qs[j][r] holds bytes 4j..4j+3 of row r's qs, so
// that a 256-bit vector of one j holds four elements of each of the eight rows, one row per lane.
struct BlockQ4_0x8 {
  uint16_t d[8];
  uint8_t qs[4][8][4];
};
// Activations for K-quant dot products (never stored in files).
struct BlockQ8_K {
  float d;
  int8_t qs[kQKK];
  int16_t bsums[kQKK / 16];  // sums of each 16 quants
};
#pragma pack(pop)
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockQ8_K) == 292);
static_assert(sizeof(BlockQ4_0x8) == 8 * sizeof(BlockQ4_0));

// Scale and min of K-quant sub-block j (0..7) from the packed 12-byte field.
inline void k_scale_min(int j, const uint8_t* q, uint8_t& scale, uint8_t& min) {
  if (j < 4) {
    scale = q[j] & 63;
    min = q[j + 4] & 63;
  } else {
    scale = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    min = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

namespace reference {
// Integer levels of one super-block: q[256] with per-32 scales and mins (Q4_K, Q5_K), or signed
// levels q[256] (Q6_K, whose per-16 scales are the block's `scales`).
void unpack_q4_k(const BlockQ4_K& b, uint8_t* q, uint8_t* scales, uint8_t* mins);
void unpack_q5_k(const BlockQ5_K& b, uint8_t* q, uint8_t* scales, uint8_t* mins);
void unpack_q6_k(const BlockQ6_K& b, int8_t* q);

void dequantize_q8_0(const BlockQ8_0* x, float* y, int64_t n);
void dequantize_q4_0(const BlockQ4_0* x, float* y, int64_t n);
void dequantize_q4_k(const BlockQ4_K* x, float* y, int64_t n);
void dequantize_q5_k(const BlockQ5_K* x, float* y, int64_t n);
void dequantize_q6_k(const BlockQ6_K* x, float* y, int64_t n);

void quantize_q8_0(const float* x, BlockQ8_0* y, int64_t n);
void quantize_q4_0(const float* x, BlockQ4_0* y, int64_t n);
void quantize_q4_k(const float* x, BlockQ4_K* y, int64_t n);
void quantize_q5_k(const float* x, BlockQ5_K* y, int64_t n);
void quantize_q6_k(const float* x, BlockQ6_K* y, int64_t n);
void quantize_q8_k(const float* x, BlockQ8_K* y, int64_t n);

float dot_q8_0(const void* w, const void* x, int64_t n);  // x: BlockQ8_0
float dot_q4_0(const void* w, const void* x, int64_t n);  // x: BlockQ8_0
float dot_q4_k(const void* w, const void* x, int64_t n);  // x: BlockQ8_K
float dot_q5_k(const void* w, const void* x, int64_t n);  // x: BlockQ8_K
float dot_q6_k(const void* w, const void* x, int64_t n);  // x: BlockQ8_K

// Eight rows of `blocks` blocks each, `row_stride` bytes apart, into `blocks` interleaved blocks, and
// row r (0..7) of interleaved blocks back out: exact inverses.
void interleave_q4_0(const void* rows, size_t row_stride, int64_t blocks, BlockQ4_0x8* out);
void deinterleave_q4_0(const BlockQ4_0x8* in, int64_t blocks, int r, BlockQ4_0* out);
// y[r] = row r . x for the eight interleaved rows (x: BlockQ8_0): dot_q4_0 of each row, bit for bit.
void dot_q4_0x8(const void* w, const void* x, int64_t n, float* y);
}  // namespace reference

namespace avx2 {
float dot_q8_0(const void* w, const void* x, int64_t n);
float dot_q4_0(const void* w, const void* x, int64_t n);
float dot_q4_k(const void* w, const void* x, int64_t n);
float dot_q5_k(const void* w, const void* x, int64_t n);
float dot_q6_k(const void* w, const void* x, int64_t n);
void dot_q4_0x8(const void* w, const void* x, int64_t n, float* y);  // x with its trailer (see act_row_bytes)
}  // namespace avx2

namespace vnni {  // AVX-512 VL + BW + VNNI, mostly on 256-bit vectors; Q8_0 x with its trailer (see act_row_bytes)
float dot_q8_0(const void* w, const void* x, int64_t n);
float dot_q4_0(const void* w, const void* x, int64_t n);
float dot_q4_k(const void* w, const void* x, int64_t n);  // x: BlockQ8_K
float dot_q5_k(const void* w, const void* x, int64_t n);  // x: BlockQ8_K
float dot_q6_k(const void* w, const void* x, int64_t n);  // x: BlockQ8_K
void dot_q4_0x8(const void* w, const void* x, int64_t n, float* y);
}  // namespace vnni

}  // namespace longqa::kernels
