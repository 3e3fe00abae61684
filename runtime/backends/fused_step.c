/* One fused recurrent step (LSTM/GRU/RNN stack + linear head) for a batch of streams.
 *
 * Gate order is PyTorch's (LSTM i,f,g,o; GRU r,z,n with the reset applied after the recurrent
 * product). Matrices are fp32, or int8 per-row with activations quantized per stream and step
 * (u8 = round(x/s)+128, int32 accumulation by AVX-512 VNNI, the +128 offset removed with the
 * precomputed row sums). Built by runtime/backends/kernel.py; the numpy path is the reference. */
#include <immintrin.h>
#include <math.h>
#include <float.h>
#include <stdint.h>
#include <string.h>

#if !defined(__AVX512F__) || !defined(__AVX512VNNI__)
#error "the fused step kernel needs AVX-512F and AVX-512 VNNI"
#endif

#define MAXL 8

typedef struct {
    const void *w;          /* fp32: (Npad/16, K, 16); int8: (Npad/16, Kpad/4, 16, 4) */
    const float *scale;     /* int8 per-row scale (Npad) */
    const int32_t *rowsum;  /* int8: 128 * sum_k w[j,k] (Npad) */
    const float *bias;      /* Npad */
    int32_t K, Kpad, Npad, int8;
} mat_t;

typedef struct {
    int32_t cell;           /* 0 rnn tanh, 1 rnn relu, 2 lstm, 3 gru */
    int32_t layers, hidden, input, output, sigmoid_out, token, vocab;  /* vocab: token models */
    const float *embedding; /* (vocab, input) or NULL */
    mat_t wx[MAXL], wh[MAXL], head;  /* wh[l].K == 0: wx[l] is the joint fp32 [W_ih | W_hh] */
    float *gx, *gh, *xin, *uscale;
    uint8_t *u;
    float *sh, *sc;         /* a chunk's gathered state rows (CHUNK, layers * hidden) */
    float *xh;              /* a chunk's joined [input | h] rows (CHUNK, max(input, hidden) + hidden) */
} model_t;

/* h_out may be h_in (and c_out c_in): a step reads a layer's state before writing it. With rows
 * set, stream s keeps its state in row rows[s] of h_in/h_out (c_in/c_out), distinct rows. */
typedef struct {
    const void *x;
    const float *h_in, *c_in;
    float *h_out, *c_out, *y;
    int32_t batch;
    const int32_t *rows;
} io_t;

/* A tile computes 16*JB output columns from column block j for SB consecutive stream rows:
 * Y[s, col] = bias[col] + sum_k W[col, k] X[s, k]. X is float (fp32 weights) or u8 activations
 * (int8 weights, us = their per-row scales); Y points at the first row's start. */
typedef void (*tile_fn)(const mat_t *m, int j, const void *X, int ldx, const float *us,
                        float *Y, int ldy);

/* ---- fp32 weights ---- */
#define F32_TILE(JB, SB)                                                                      \
static void f32_tile_##JB##_##SB(const mat_t *m, int j0, const void *Xv, int ldx,            \
                                 const float *us, float *Y, int ldy) {                       \
    const int K = m->K;                                                                       \
    const float *W = (const float *)m->w + (size_t)j0 * K * 16, *X = (const float *)Xv;       \
    __m512 acc[JB][SB];                                                                       \
    (void)us;                                                                                 \
    for (int j = 0; j < JB; j++) {                                                            \
        __m512 b = _mm512_loadu_ps(m->bias + 16 * (j0 + j));                                  \
        for (int s = 0; s < SB; s++) acc[j][s] = b;                                           \
    }                                                                                         \
    for (int k = 0; k < K; k++) {                                                             \
        __m512 w[JB];                                                                         \
        for (int j = 0; j < JB; j++) w[j] = _mm512_loadu_ps(W + ((size_t)j * K + k) * 16);    \
        for (int s = 0; s < SB; s++) {                                                        \
            __m512 xv = _mm512_set1_ps(X[(size_t)s * ldx + k]);                               \
            for (int j = 0; j < JB; j++) acc[j][s] = _mm512_fmadd_ps(w[j], xv, acc[j][s]);    \
        }                                                                                     \
    }                                                                                         \
    for (int j = 0; j < JB; j++)                                                              \
        for (int s = 0; s < SB; s++)                                                          \
            _mm512_storeu_ps(Y + (size_t)s * ldy + 16 * (j0 + j), acc[j][s]);                 \
}
F32_TILE(2, 8)
F32_TILE(1, 8)
F32_TILE(4, 4)
F32_TILE(1, 4)
F32_TILE(8, 1)

/* One row, one column block: four partial sums over k break the FMA latency chain (a head of a
 * few outputs is a single block). */
static void f32_tile_1_1(const mat_t *m, int j0, const void *Xv, int ldx, const float *us,
                         float *Y, int ldy) {
    const int K = m->K;
    const float *W = (const float *)m->w + (size_t)j0 * K * 16, *X = (const float *)Xv;
    __m512 acc[4] = {_mm512_loadu_ps(m->bias + 16 * j0), _mm512_setzero_ps(),
                     _mm512_setzero_ps(), _mm512_setzero_ps()};
    (void)ldx, (void)us, (void)ldy;
    int k = 0;
    for (; k + 4 <= K; k += 4)
        for (int p = 0; p < 4; p++)
            acc[p] = _mm512_fmadd_ps(_mm512_loadu_ps(W + (size_t)(k + p) * 16),
                                     _mm512_set1_ps(X[k + p]), acc[p]);
    for (; k < K; k++)
        acc[0] = _mm512_fmadd_ps(_mm512_loadu_ps(W + (size_t)k * 16), _mm512_set1_ps(X[k]), acc[0]);
    __m512 sum = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
    _mm512_storeu_ps(Y + 16 * j0, sum);
}

/* ---- int8 weights x u8 activations, int32 accumulate (vpdpbusd) ---- */
#define S8_TILE(JB, SB)                                                                       \
static void s8_tile_##JB##_##SB(const mat_t *m, int j0, const void *Xv, int ldu,             \
                                const float *us, float *Y, int ldy) {                        \
    const int KG = m->Kpad / 4;                                                               \
    const int8_t *W = (const int8_t *)m->w + (size_t)j0 * KG * 64;                            \
    const uint8_t *U = (const uint8_t *)Xv;                                                   \
    __m512i acc[JB][SB];                                                                      \
    for (int j = 0; j < JB; j++)                                                              \
        for (int s = 0; s < SB; s++) acc[j][s] = _mm512_setzero_si512();                      \
    for (int g = 0; g < KG; g++) {                                                            \
        __m512i w[JB];                                                                        \
        for (int j = 0; j < JB; j++)                                                          \
            w[j] = _mm512_loadu_si512((const void *)(W + ((size_t)j * KG + g) * 64));         \
        for (int s = 0; s < SB; s++) {                                                        \
            int32_t four;                                                                     \
            memcpy(&four, U + (size_t)s * ldu + 4 * g, 4);                                    \
            __m512i xv = _mm512_set1_epi32(four);                                             \
            for (int j = 0; j < JB; j++) acc[j][s] = _mm512_dpbusd_epi32(acc[j][s], xv, w[j]); \
        }                                                                                     \
    }                                                                                         \
    for (int j = 0; j < JB; j++) {                                                            \
        int col = 16 * (j0 + j);                                                              \
        __m512i rs = _mm512_loadu_si512((const void *)(m->rowsum + col));                     \
        __m512 ws = _mm512_loadu_ps(m->scale + col), b = _mm512_loadu_ps(m->bias + col);     \
        for (int s = 0; s < SB; s++) {                                                        \
            __m512 v = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[j][s], rs));                   \
            v = _mm512_fmadd_ps(v, _mm512_mul_ps(ws, _mm512_set1_ps(us[s])), b);              \
            _mm512_storeu_ps(Y + (size_t)s * ldy + col, v);                                   \
        }                                                                                     \
    }                                                                                         \
}
S8_TILE(2, 8)
S8_TILE(1, 8)
S8_TILE(4, 4)
S8_TILE(1, 4)
S8_TILE(8, 1)

/* One row, one column block, four partial sums (as f32_tile_1_1). */
static void s8_tile_1_1(const mat_t *m, int j0, const void *Xv, int ldu, const float *us,
                        float *Y, int ldy) {
    const int KG = m->Kpad / 4;
    const int8_t *W = (const int8_t *)m->w + (size_t)j0 * KG * 64;
    const uint8_t *U = (const uint8_t *)Xv;
    __m512i acc[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),
                      _mm512_setzero_si512()};
    (void)ldu, (void)ldy;
    for (int g = 0; g < KG; g++) {
        int32_t four;
        memcpy(&four, U + 4 * g, 4);
        acc[g & 3] = _mm512_dpbusd_epi32(acc[g & 3], _mm512_set1_epi32(four),
                                         _mm512_loadu_si512((const void *)(W + (size_t)g * 64)));
    }
    __m512i total = _mm512_add_epi32(_mm512_add_epi32(acc[0], acc[1]),
                                     _mm512_add_epi32(acc[2], acc[3]));
    int col = 16 * j0;
    __m512 v = _mm512_cvtepi32_ps(_mm512_sub_epi32(total, _mm512_loadu_si512(
        (const void *)(m->rowsum + col))));
    v = _mm512_fmadd_ps(v, _mm512_mul_ps(_mm512_loadu_ps(m->scale + col), _mm512_set1_ps(us[0])),
                        _mm512_loadu_ps(m->bias + col));
    _mm512_storeu_ps(Y + col, v);
}

/* Cover B rows x all column blocks: groups of 8 rows take 2x8 tiles (16 accumulators, two weight
 * loads per eight broadcasts keep the FMA unit busy), a remaining group of 4 rows 4x4 tiles, column
 * group outermost so its weights stay in L1 while every row group uses them; single rows take 8x1
 * tiles (8 independent accumulators hide the FMA latency when B is 1). t: 2x8, 1x8, 4x4, 1x4,
 * 8x1, 1x1. */
static void tile_grid(const mat_t *m, const tile_fn t[6], const uint8_t *X, size_t row_bytes,
                      int ldx, const float *us, int B, float *Y, int ldy) {
    int nb = m->Npad / 16, rows8 = B - B % 8, rows4 = B - B % 4;
    for (int j = 0; j < nb && rows8;) {
        int wide = nb - j >= 2;
        for (int s = 0; s < rows8; s += 8)
            t[wide ? 0 : 1](m, j, X + s * row_bytes, ldx, us + s, Y + (size_t)s * ldy, ldy);
        j += wide ? 2 : 1;
    }
    for (int j = 0; j < nb && rows4 > rows8;) {
        int wide = nb - j >= 4;
        t[wide ? 2 : 3](m, j, X + rows8 * row_bytes, ldx, us + rows8, Y + (size_t)rows8 * ldy,
                        ldy);
        j += wide ? 4 : 1;
    }
    for (int s = rows4; s < B; s++) {
        const uint8_t *x = X + s * row_bytes;
        float *y = Y + (size_t)s * ldy;
        int j = 0;
        for (; j + 8 <= nb; j += 8) t[4](m, j, x, ldx, us + s, y, ldy);
        for (; j < nb; j++) t[5](m, j, x, ldx, us + s, y, ldy);
    }
}

static const tile_fn F32_TILES[6] = {f32_tile_2_8, f32_tile_1_8, f32_tile_4_4, f32_tile_1_4,
                                     f32_tile_8_1, f32_tile_1_1};
static const tile_fn S8_TILES[6] = {s8_tile_2_8, s8_tile_1_8, s8_tile_4_4, s8_tile_1_4,
                                    s8_tile_8_1, s8_tile_1_1};

/* per-row symmetric quantization of X (B, K) to u8 with offset 128, zero padding to Kpad;
 * a row holding NaN/Inf gets a NaN scale, so its outputs are NaN as in fp32 */
static void quantize_rows(const float *X, int ldx, int B, int K, int Kpad, uint8_t *U, float *us) {
    const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    for (int s = 0; s < B; s++) {
        const float *x = X + (size_t)s * ldx;
        __m512 amax = _mm512_setzero_ps();
        __mmask16 bad = 0;
        for (int k = 0; k < K; k += 16) {
            __mmask16 mk = K - k >= 16 ? 0xFFFF : (__mmask16)((1u << (K - k)) - 1);
            __m512 v = _mm512_and_ps(_mm512_maskz_loadu_ps(mk, x + k), absmask);
            bad |= _mm512_cmp_ps_mask(v, _mm512_set1_ps(FLT_MAX), _CMP_NLE_UQ);  /* inf or NaN */
            amax = _mm512_max_ps(amax, v);
        }
        float m = _mm512_reduce_max_ps(amax);
        float scale = m > 0.0f ? m / 127.0f : 1.0f;
        __m512 inv = _mm512_set1_ps(1.0f / scale), lo = _mm512_set1_ps(-127.0f);
        __m512 hi = _mm512_set1_ps(127.0f);
        __m512i offset = _mm512_set1_epi32(128);
        uint8_t *u = U + (size_t)s * Kpad;
        for (int k = 0; k < Kpad; k += 16) {
            int n = Kpad - k >= 16 ? 16 : Kpad - k;
            __mmask16 mk = K - k >= 16 ? 0xFFFF : (K > k ? (__mmask16)((1u << (K - k)) - 1) : 0);
            __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, x + k), inv);
            v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
            __m128i q = _mm512_cvtusepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(v), offset));
            _mm_mask_storeu_epi8(u + k, (__mmask16)((1u << n) - 1), q);
        }
        us[s] = bad ? NAN : scale;
    }
}

static void gemm(const model_t *md, const mat_t *m, const float *X, int ldx, int B, float *Y) {
    if (m->int8) {
        quantize_rows(X, ldx, B, m->K, m->Kpad, md->u, md->uscale);
        tile_grid(m, S8_TILES, md->u, m->Kpad, m->Kpad, md->uscale, B, Y, m->Npad);
    } else {
        tile_grid(m, F32_TILES, (const uint8_t *)X, sizeof(float) * ldx, ldx, md->uscale, B, Y,
                  m->Npad);
    }
}

/* ---- activations, 16 lanes at a time: exp by range reduction, a polynomial and scalef ---- */
static inline __m512 vexp(__m512 x) {
    /* operand order keeps NaN: min/max return the second operand when either is NaN */
    x = _mm512_min_ps(_mm512_set1_ps(88.0f), _mm512_max_ps(_mm512_set1_ps(-87.0f), x));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    /* e^r on |r| <= ln2/2: degree-6 Chebyshev fit, relative error 1.1e-7 */
    __m512 p = _mm512_set1_ps(1.394858118e-3f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.375128731e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.166621715e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.666641533e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}
static inline __m512 vsigmoid(__m512 x) {
    __m512 one = _mm512_set1_ps(1.0f);
    return _mm512_div_ps(one, _mm512_add_ps(one, vexp(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}
static inline __m512 vtanh(__m512 x) {
    __m512 one = _mm512_set1_ps(1.0f);
    __m512 e = vexp(_mm512_mul_ps(x, _mm512_set1_ps(-2.0f)));
    return _mm512_sub_ps(_mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(one, e)), one);
}
#define LD(p) _mm512_maskz_loadu_ps(mk, (p) + k)
#define ST(p, v) _mm512_mask_storeu_ps((p) + k, mk, (v))
#define ADD _mm512_add_ps
#define MUL _mm512_mul_ps

/* Gate pre-activations at offset off: input part + recurrent part, or the joint product alone
 * (r NULL) */
#define GATE(off) (r ? ADD(LD(a + (off)), LD(r + (off))) : LD(a + (off)))

static void cell(const model_t *md, int B, int l, const float *gx, const float *gh, int ld,
                 const io_t *io) {
    int H = md->hidden, LH = md->layers * md->hidden;
    for (int s = 0; s < B; s++) {
        const float *a = gx + (size_t)s * ld, *r = gh ? gh + (size_t)s * ld : NULL;
        const float *h = io->h_in + (size_t)s * LH + l * H;
        float *ho = io->h_out + (size_t)s * LH + l * H;
        const float *c = md->cell == 2 ? io->c_in + (size_t)s * LH + l * H : NULL;
        float *co = md->cell == 2 ? io->c_out + (size_t)s * LH + l * H : NULL;
        for (int k = 0; k < H; k += 16) {
            __mmask16 mk = H - k >= 16 ? 0xFFFF : (__mmask16)((1u << (H - k)) - 1);
            if (md->cell == 2) {
                __m512 i = vsigmoid(GATE(0)), f = vsigmoid(GATE(H));
                __m512 g = vtanh(GATE(2 * H)), o = vsigmoid(GATE(3 * H));
                __m512 cn = _mm512_fmadd_ps(f, LD(c), MUL(i, g));
                ST(co, cn);
                ST(ho, MUL(o, vtanh(cn)));
            } else if (md->cell == 3) {  /* never joint: the reset gate scales W_hn h + b_hn */
                __m512 rg = vsigmoid(ADD(LD(a), LD(r))), z = vsigmoid(ADD(LD(a + H), LD(r + H)));
                __m512 n = vtanh(_mm512_fmadd_ps(rg, LD(r + 2 * H), LD(a + 2 * H)));
                ST(ho, _mm512_fmadd_ps(z, _mm512_sub_ps(LD(h), n), n));  /* (1-z)n + zh */
            } else if (md->cell == 1) {
                ST(ho, _mm512_max_ps(_mm512_setzero_ps(), GATE(0)));
            } else {
                ST(ho, vtanh(GATE(0)));
            }
        }
    }
}

static inline float fsigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

#define CHUNK 32  /* streams per pass: scratch rows stay in L1/L2 next to the weights */

static void step_rows(const model_t *md, const io_t *io, const float *x) {
    int B = io->batch, H = md->hidden, LH = md->layers * md->hidden;
    const float *inp = x;
    int ld = md->input;
    for (int l = 0; l < md->layers; l++) {
        if (md->wh[l].K == 0) {  /* one product over the joined [input | h] rows */
            int K = md->wx[l].K, KX = K - H;
            for (int s = 0; s < B; s++) {
                memcpy(md->xh + (size_t)s * K, inp + (size_t)s * ld, sizeof(float) * KX);
                memcpy(md->xh + (size_t)s * K + KX, io->h_in + (size_t)s * LH + l * H,
                       sizeof(float) * H);
            }
            gemm(md, &md->wx[l], md->xh, K, B, md->gx);
            cell(md, B, l, md->gx, NULL, md->wx[l].Npad, io);
        } else {
            gemm(md, &md->wx[l], inp, ld, B, md->gx);
            gemm(md, &md->wh[l], io->h_in + l * H, LH, B, md->gh);
            cell(md, B, l, md->gx, md->gh, md->wx[l].Npad, io);
        }
        inp = io->h_out + l * H;
        ld = LH;
    }
    gemm(md, &md->head, inp, ld, B, md->gx);
    for (int s = 0; s < B; s++)
        for (int o = 0; o < md->output; o++) {
            float v = md->gx[(size_t)s * md->head.Npad + o];
            io->y[(size_t)s * md->output + o] = md->sigmoid_out ? fsigmoid(v) : v;
        }
}

/* Copy n state rows between the tensors (row rows[s], layers * hidden floats each) and the
 * contiguous chunk scratch: gather (to_chunk) before a step, scatter after. */
static void move_rows(float *tensor, float *chunk, const int32_t *rows, int n, int LH,
                      int to_chunk) {
    for (int s = 0; s < n; s++) {
        float *row = tensor + (size_t)rows[s] * LH, *scratch = chunk + (size_t)s * LH;
        memcpy(to_chunk ? scratch : row, to_chunk ? row : scratch, sizeof(float) * LH);
    }
}

/* Steps io->batch streams in chunks. Returns 1, without stepping, when check_finite is set and
 * a float input holds NaN/Inf. */
int edgernn_step(const model_t *md, const io_t *io, int check_finite) {
    int B = io->batch, LH = md->layers * md->hidden;
    if (!md->token && check_finite) {
        const float *x = (const float *)io->x;
        int bad = 0;
        for (int k = 0; k < B * md->input; k++) bad |= !(fabsf(x[k]) <= FLT_MAX);
        if (bad) return 1;
    }
    for (int s0 = 0; s0 < B; s0 += CHUNK) {
        int n = B - s0 < CHUNK ? B - s0 : CHUNK;
        io_t part = *io;
        part.batch = n;
        part.rows = NULL;
        const int32_t *rows = io->rows ? io->rows + s0 : NULL;
        int first = s0;  /* the chunk's first state row, when its rows are consecutive */
        if (rows) {
            int s = 1;
            while (s < n && rows[s] == rows[0] + s) s++;
            if (s == n) {
                first = rows[0];
                rows = NULL;
            }
        }
        if (rows) {  /* gather, step the chunk in place, scatter */
            move_rows((float *)io->h_in, md->sh, rows, n, LH, 1);
            part.h_in = part.h_out = md->sh;
            if (io->c_in) {
                move_rows((float *)io->c_in, md->sc, rows, n, LH, 1);
                part.c_in = part.c_out = md->sc;
            }
        } else {
            part.h_in += (size_t)first * LH;
            part.h_out += (size_t)first * LH;
            if (io->c_in) {
                part.c_in += (size_t)first * LH;
                part.c_out += (size_t)first * LH;
            }
        }
        part.y += (size_t)s0 * md->output;
        const float *x;
        if (md->token) {
            const int64_t *ids = (const int64_t *)io->x + s0;
            for (int s = 0; s < n; s++)
                memcpy(md->xin + (size_t)s * md->input, md->embedding + (size_t)ids[s] * md->input,
                       sizeof(float) * md->input);
            x = md->xin;
        } else {
            x = (const float *)io->x + (size_t)s0 * md->input;
        }
        step_rows(md, &part, x);
        if (rows) {
            move_rows(io->h_out, md->sh, rows, n, LH, 0);
            if (io->c_in) move_rows(io->c_out, md->sc, rows, n, LH, 0);
        }
    }
    return 0;
}

#ifdef EDGERNN_PYMODULE
/* With Python's and numpy's headers the same library is also the module _fused_step. Its Stepper
 * runs the step without ctypes or Python-level copies: it reads float32 samples straight from
 * numpy arrays, applies the bundle's input and output scaling (float32, in numpy's order) and
 * returns fresh output arrays. It holds the GIL throughout, so a call is atomic to Python. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

enum { IN_SHIFT, IN_SCALE, OUT_SCALE, OUT_SHIFT };

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    const model_t *md;
    PyObject *owner;          /* keeps the model's memory alive */
    PyObject *lock;           /* the model's threading.Lock: held means in use elsewhere */
    PyObject *error;          /* exception type raised for NaN/Inf input; NULL: propagate */
    PyObject *message;        /* its message */
    PyArrayObject *h, *c;     /* the state a call advances (batch 1), or NULL */
    const float *affine[4];   /* IN_SHIFT ... OUT_SHIFT, or NULL */
    PyObject *affine_arrays[4];
    float *x, *y;             /* scratch for `room` samples */
    int32_t *rows;
    Py_ssize_t room;
    uint8_t *seen;            /* arrays(): a mark per state row, zero between calls */
    Py_ssize_t seen_room;
    int64_t token;            /* a token model's input id */
} Stepper;

/* Copy obj, a float32 (input,) numpy array, into dst with the input scaling; 0 (no error set)
 * when obj is anything else, which the caller's checked path converts or refuses. */
static void read_values(const Stepper *st, const char *p, npy_intp stride, float *dst) {
    const float *shift = st->affine[IN_SHIFT], *scale = st->affine[IN_SCALE];
    for (int k = 0; k < st->md->input; k++) {
        float v;
        memcpy(&v, p + k * stride, sizeof v);
        if (shift) v = v - shift[k];
        if (scale) v = v * scale[k];
        dst[k] = v;
    }
}

/* float32, native byte order, of shape (n, input) (n < 0: (input,)) for a float model */
static int is_samples(const Stepper *st, PyObject *obj, npy_intp n) {
    PyArrayObject *a = (PyArrayObject *)obj;
    int nd = n < 0 ? 1 : 2;
    return !st->md->token && PyArray_CheckExact(obj) && PyArray_TYPE(a) == NPY_FLOAT32 &&
           PyArray_NDIM(a) == nd && PyArray_DIM(a, nd - 1) == st->md->input &&
           (n < 0 || PyArray_DIM(a, 0) == n) && !PyArray_ISBYTESWAPPED(a);
}

/* A token model's input: an int (or numpy integer) id in [0, vocab) into st->token; 0 (no error
 * set) for anything else, which the checked path maps (vocabulary strings) or refuses. */
static int read_token(Stepper *st, PyObject *obj) {
    if (!PyLong_CheckExact(obj) && !PyArray_IsScalar(obj, Integer)) return 0;
    PyObject *index = PyNumber_Index(obj);
    long long id = index ? PyLong_AsLongLong(index) : -1;
    Py_XDECREF(index);
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    if (id < 0 || id >= st->md->vocab) return 0;
    st->token = id;
    return 1;
}

static int read_sample(const Stepper *st, PyObject *obj, float *dst) {
    if (!is_samples(st, obj, -1)) return 0;
    PyArrayObject *a = (PyArrayObject *)obj;
    read_values(st, PyArray_BYTES(a), PyArray_STRIDE(a, 0), dst);
    return 1;
}

/* The output scaling of n rows of y, in place. */
static void scale_outputs(const Stepper *st, float *y, Py_ssize_t n) {
    const float *scale = st->affine[OUT_SCALE], *shift = st->affine[OUT_SHIFT];
    const int O = st->md->output;
    if (!scale && !shift) return;
    for (Py_ssize_t i = 0; i < n * O; i++) {
        float v = y[i];
        if (scale) v = v * scale[i % O];
        if (shift) v = v + shift[i % O];
        y[i] = v;
    }
}

/* A fresh float32 array of `rows` outputs from y with the output scaling: (rows, output), or
 * (output,) when one_d (a single step). */
static PyArrayObject *new_outputs(const Stepper *st, const float *y, npy_intp rows, int one_d) {
    npy_intp dims[2] = {rows, st->md->output};
    PyArrayObject *arr = (PyArrayObject *)PyArray_SimpleNew(one_d ? 1 : 2, one_d ? dims + 1 : dims,
                                                            NPY_FLOAT32);
    if (!arr) return NULL;
    float *out = PyArray_DATA(arr);
    memcpy(out, y, sizeof(float) * rows * st->md->output);
    scale_outputs(st, out, rows);
    return arr;
}

static PyObject *str_locked;

/* 1 when the model's lock is held (a checked-path step is under way), 0 when free, -1 error.
 * The GIL is held from here to the end of the step, so no thread can take it meanwhile. */
static int in_use(const Stepper *st) {
    PyObject *held = PyObject_CallMethodNoArgs(st->lock, str_locked);
    if (!held) return -1;
    int b = PyObject_IsTrue(held);
    Py_DECREF(held);
    return b;
}

static int grow(Stepper *st, Py_ssize_t n) {
    if (n <= st->room) return 0;
    float *x = PyMem_Realloc(st->x, sizeof(float) * n * (st->md->input > 0 ? st->md->input : 1));
    if (x) st->x = x;
    float *y = x ? PyMem_Realloc(st->y, sizeof(float) * n * st->md->output) : NULL;
    if (y) st->y = y;
    int32_t *rows = y ? PyMem_Realloc(st->rows, sizeof(int32_t) * n) : NULL;
    if (!rows) {
        PyErr_NoMemory();
        return -1;
    }
    st->rows = rows;
    st->room = n;
    return 0;
}

static PyObject *nonfinite(const Stepper *st) {
    PyErr_SetObject(st->error, st->message);
    return NULL;
}

/* A state tensor: float32, C-contiguous (rows, layers, hidden); NULL with ValueError if not. */
static PyArrayObject *state_tensor(const model_t *md, PyObject *obj, const char *name) {
    PyArrayObject *a = (PyArrayObject *)obj;
    if (!PyArray_CheckExact(obj) || PyArray_TYPE(a) != NPY_FLOAT32 || PyArray_NDIM(a) != 3 ||
        !PyArray_IS_C_CONTIGUOUS(a) || PyArray_ISBYTESWAPPED(a) || !PyArray_ISWRITEABLE(a) ||
        PyArray_DIM(a, 1) != md->layers || PyArray_DIM(a, 2) != md->hidden) {
        PyErr_Format(PyExc_ValueError, "state %s must be a writeable C-contiguous float32 array "
                     "(streams, %d, %d)", name, md->layers, md->hidden);
        return NULL;
    }
    return a;
}

/* stepper(x) -> y: one sample through the bound state; None when x is not a float32 sample or
 * the model is in use (the checked path converts, refuses or reports) */
static PyObject *stepper_call(PyObject *self, PyObject *const *args, size_t nargsf,
                             PyObject *kwnames) {
    Stepper *st = (Stepper *)self;
    if (PyVectorcall_NARGS(nargsf) != 1 || kwnames || !st->h) {
        PyErr_SetString(PyExc_TypeError, "a bound stepper takes one sample");
        return NULL;
    }
    int busy = in_use(st);
    if (busy < 0) return NULL;
    int ok = st->md->token ? read_token(st, args[0]) : read_sample(st, args[0], st->x);
    if (busy || !ok) Py_RETURN_NONE;
    float *h = PyArray_DATA(st->h), *c = st->c ? PyArray_DATA(st->c) : NULL;
    io_t io = {st->md->token ? (const void *)&st->token : st->x, h, c, h, c, st->y, 1, NULL};
    if (edgernn_step(st->md, &io, st->error != NULL)) return nonfinite(st);
    return (PyObject *)new_outputs(st, st->y, 1, 1);
}

/* The pool's state tensors (h, c) for a call; 0 with ValueError set if they do not fit. */
static int pool_state(const Stepper *st, PyObject *h_obj, PyObject *c_obj, PyArrayObject **h,
                      PyArrayObject **c) {
    *c = NULL;
    if (!(*h = state_tensor(st->md, h_obj, "h"))) return 0;
    if (st->md->cell != 2) return 1;
    if (!(*c = state_tensor(st->md, c_obj, "c"))) return 0;
    if (PyArray_DIM(*c, 0) != PyArray_DIM(*h, 0)) {
        PyErr_SetString(PyExc_ValueError, "state h and c hold different numbers of streams");
        return 0;
    }
    return 1;
}

/* The state row of stream id key: >= 0; -1 with an error set; -2 (no error) when key is not an
 * int known to slot, which the caller's checked path reports. */
static long slot_row(PyObject *slot, PyObject *key, PyArrayObject *h) {
    if (!PyLong_CheckExact(key)) return -2;  /* hashing ints runs no Python code */
    PyObject *row = PyDict_GetItemWithError(slot, key);
    if (!row) return PyErr_Occurred() ? -1 : -2;
    long r = PyLong_AsLong(row);
    if (r == -1 && PyErr_Occurred()) return -1;
    if (r < 0 || r >= PyArray_DIM(h, 0)) {
        PyErr_Format(PyExc_ValueError, "row %ld is outside the state's %zd streams", r,
                     (Py_ssize_t)PyArray_DIM(h, 0));
        return -1;
    }
    return r;
}

/* Step the n samples in st->x through state rows st->rows in place; 0, or -1 with an error. */
static int step_pool_rows(const Stepper *st, PyArrayObject *h, PyArrayObject *c, Py_ssize_t n) {
    float *hd = PyArray_DATA(h), *cd = c ? PyArray_DATA(c) : NULL;
    io_t io = {st->x, hd, cd, hd, cd, st->y, (int32_t)n, st->rows};
    if (edgernn_step(st->md, &io, st->error != NULL)) {
        nonfinite(st);
        return -1;
    }
    return 0;
}

/* pool(samples, slot, h, c) -> {id: y}: samples {id: x} step the rows slot[id] of the state
 * tensors h and c (None unless LSTM) in place. None when an id is not an int known to slot, a
 * sample is not a float32 array or the model is in use: the caller's checked path handles it. */
static PyObject *stepper_pool(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Stepper *st = (Stepper *)self;
    const model_t *md = st->md;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "pool(samples, slot, h, c)");
        return NULL;
    }
    PyObject *samples = args[0], *slot = args[1];
    if (md->token || !PyDict_CheckExact(samples) || !PyDict_Check(slot)) Py_RETURN_NONE;
    int busy = in_use(st);
    if (busy) return busy < 0 ? NULL : Py_NewRef(Py_None);
    PyArrayObject *h, *c;
    if (!pool_state(st, args[2], args[3], &h, &c)) return NULL;
    Py_ssize_t n = PyDict_GET_SIZE(samples), pos = 0, i = 0;
    if (grow(st, n) < 0) return NULL;
    PyObject *key, *value;
    while (PyDict_Next(samples, &pos, &key, &value)) {
        long r = slot_row(slot, key, h);
        if (r < 0) return r == -1 ? NULL : Py_NewRef(Py_None);
        if (!read_sample(st, value, st->x + (size_t)i * md->input)) Py_RETURN_NONE;
        st->rows[i++] = (int32_t)r;
    }
    if (step_pool_rows(st, h, c, n) < 0) return NULL;
    /* one fresh (n, output) block; each stream's y is a row of it, set in a copy of samples
     * (its keys already in place, so no insert resizes the table) */
    PyArrayObject *block = new_outputs(st, st->y, n, 0);
    PyObject *out = block ? PyDict_Copy(samples) : NULL;
    if (!out) {
        Py_XDECREF(block);
        return NULL;
    }
    npy_intp O = md->output;
    float *rows = PyArray_DATA(block);
    for (pos = 0, i = 0; PyDict_Next(samples, &pos, &key, &value); i++) {
        PyArray_Descr *f32 = PyArray_DescrFromType(NPY_FLOAT32);  /* reference stolen below */
        PyObject *y = f32 ? PyArray_NewFromDescr(&PyArray_Type, f32, 1, &O, NULL,
                                                 rows + (size_t)i * O, NPY_ARRAY_CARRAY, NULL)
                          : NULL;
        if (y && PyArray_SetBaseObject((PyArrayObject *)y, Py_NewRef(block)) < 0) Py_CLEAR(y);
        if (!y || PyDict_SetItem(out, key, y) < 0) {
            Py_XDECREF(y);
            Py_DECREF(out);
            Py_DECREF(block);
            return NULL;
        }
        Py_DECREF(y);
    }
    Py_DECREF(block);
    return out;
}

/* arrays(ids, xs, slot, h, c) -> ys: the array form of pool(); ids a list of n ints, xs float32
 * (n, input), ys a fresh (n, output) array. None as pool(), and when an id appears twice. */
static PyObject *stepper_arrays(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Stepper *st = (Stepper *)self;
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "arrays(ids, xs, slot, h, c)");
        return NULL;
    }
    PyObject *ids = args[0], *xs = args[1], *slot = args[2];
    if (!PyList_CheckExact(ids) || !PyDict_Check(slot)) Py_RETURN_NONE;
    Py_ssize_t n = PyList_GET_SIZE(ids);
    if (n == 0 || !is_samples(st, xs, n)) Py_RETURN_NONE;
    int busy = in_use(st);
    if (busy) return busy < 0 ? NULL : Py_NewRef(Py_None);
    PyArrayObject *h, *c;
    if (!pool_state(st, args[3], args[4], &h, &c) || grow(st, n) < 0) return NULL;
    if (PyArray_DIM(h, 0) > st->seen_room) {
        uint8_t *seen = PyMem_Realloc(st->seen, PyArray_DIM(h, 0));
        if (!seen) return PyErr_NoMemory();
        memset(seen + st->seen_room, 0, PyArray_DIM(h, 0) - st->seen_room);
        st->seen = seen;
        st->seen_room = PyArray_DIM(h, 0);
    }
    PyArrayObject *a = (PyArrayObject *)xs;
    const char *base = PyArray_BYTES(a);
    npy_intp row_stride = PyArray_STRIDE(a, 0), stride = PyArray_STRIDE(a, 1);
    Py_ssize_t i = 0;
    long r = 0;
    for (; i < n; i++) {
        r = slot_row(slot, PyList_GET_ITEM(ids, i), h);
        if (r < 0 || st->seen[r]) break;  /* unknown, or repeated: the checked path refuses */
        st->seen[r] = 1;
        st->rows[i] = (int32_t)r;
        read_values(st, base + i * row_stride, stride, st->x + (size_t)i * st->md->input);
    }
    for (Py_ssize_t j = 0; j < i; j++) st->seen[st->rows[j]] = 0;
    if (i < n) return r == -1 ? NULL : Py_NewRef(Py_None);
    if (step_pool_rows(st, h, c, n) < 0) return NULL;
    return (PyObject *)new_outputs(st, st->y, n, 0);
}

static void stepper_dealloc(PyObject *self) {
    Stepper *st = (Stepper *)self;
    Py_XDECREF(st->owner);
    Py_XDECREF(st->lock);
    Py_XDECREF(st->error);
    Py_XDECREF(st->message);
    Py_XDECREF(st->h);
    Py_XDECREF(st->c);
    for (int k = 0; k < 4; k++) Py_XDECREF(st->affine_arrays[k]);
    PyMem_Free(st->x);
    PyMem_Free(st->y);
    PyMem_Free(st->rows);
    PyMem_Free(st->seen);
    Py_TYPE(self)->tp_free(self);
}

static PyMethodDef stepper_methods[] = {
    {"pool", (PyCFunction)(void (*)(void))stepper_pool, METH_FASTCALL,
     "pool(samples, slot, h, c) -> {id: y} or None"},
    {"arrays", (PyCFunction)(void (*)(void))stepper_arrays, METH_FASTCALL,
     "arrays(ids, xs, slot, h, c) -> ys or None"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject StepperType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_fused_step.Stepper",
    .tp_basicsize = sizeof(Stepper),
    .tp_dealloc = stepper_dealloc,
    .tp_vectorcall_offset = offsetof(Stepper, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "the fused step for one model; see fused_step.c",
    .tp_methods = stepper_methods,
};

/* A float32 C-contiguous 1-D array of n values, or None; -1 with ValueError otherwise. */
static int vector_arg(PyObject *obj, npy_intp n, const char *what, PyObject **keep,
                      const float **data) {
    if (obj == Py_None) return 0;
    PyArrayObject *a = (PyArrayObject *)obj;
    if (!PyArray_CheckExact(obj) || PyArray_TYPE(a) != NPY_FLOAT32 || PyArray_NDIM(a) != 1 ||
        PyArray_DIM(a, 0) != n || !PyArray_IS_C_CONTIGUOUS(a) || PyArray_ISBYTESWAPPED(a)) {
        PyErr_Format(PyExc_ValueError, "%s must be a float32 array of %zd values or None", what,
                     (Py_ssize_t)n);
        return -1;
    }
    Py_INCREF(obj);
    *keep = obj;
    *data = PyArray_DATA(a);
    return 0;
}

/* stepper(model_address, owner, lock, error_type, message, h, c, in_shift, in_scale, out_scale,
 * out_shift): error_type None propagates NaN/Inf; h, c (None unless LSTM) are the batch-1
 * state a call advances, or both None for a stepper used only through pool(). */
static PyObject *make_stepper(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 11) {
        PyErr_SetString(PyExc_TypeError, "stepper() takes 11 arguments");
        return NULL;
    }
    const model_t *md = PyLong_AsVoidPtr(args[0]);
    if (!md) return PyErr_Occurred() ? NULL : PyErr_Format(PyExc_ValueError, "null model");
    Stepper *st = PyObject_New(Stepper, &StepperType);
    if (!st) return NULL;
    st->vectorcall = stepper_call;
    st->md = md;
    st->x = st->y = NULL;
    st->rows = NULL;
    st->room = 0;
    st->seen = NULL;
    st->seen_room = 0;
    st->h = st->c = NULL;
    for (int k = 0; k < 4; k++) {
        st->affine[k] = NULL;
        st->affine_arrays[k] = NULL;
    }
    st->owner = Py_NewRef(args[1]);
    st->lock = Py_NewRef(args[2]);
    st->error = args[3] == Py_None ? NULL : Py_NewRef(args[3]);
    st->message = Py_NewRef(args[4]);
    PyObject *self = (PyObject *)st;
    if (args[5] != Py_None) {
        PyArrayObject *h = state_tensor(md, args[5], "h"), *c = NULL;
        if (!h) goto fail;
        st->h = (PyArrayObject *)Py_NewRef(h);
        if (md->cell == 2) {
            if (!(c = state_tensor(md, args[6], "c"))) goto fail;
            st->c = (PyArrayObject *)Py_NewRef(c);
        }
        if (PyArray_DIM(h, 0) != 1 || (c && PyArray_DIM(c, 0) != 1)) goto fail;
    }
    const npy_intp sizes[4] = {md->input, md->input, md->output, md->output};
    const char *names[4] = {"in_shift", "in_scale", "out_scale", "out_shift"};
    for (int k = 0; k < 4; k++)
        if (vector_arg(args[7 + k], sizes[k], names[k], &st->affine_arrays[k], &st->affine[k]))
            goto fail;
    if (grow(st, 1) < 0) goto fail;
    return self;
fail:
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "a bound state holds one stream");
    Py_DECREF(self);
    return NULL;
}

static PyMethodDef methods[] = {
    {"stepper", (PyCFunction)(void (*)(void))make_stepper, METH_FASTCALL,
     "stepper(model_address, owner, lock, error_type, message, h, c, in_shift, in_scale, "
     "out_scale, out_shift)"},
    {NULL, NULL, 0, NULL},
};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fused_step", NULL, -1, methods,
                                    NULL, NULL, NULL, NULL};
PyMODINIT_FUNC PyInit__fused_step(void) {
    import_array();
    if (PyType_Ready(&StepperType) < 0) return NULL;
    if (!(str_locked = PyUnicode_InternFromString("locked"))) return NULL;
    return PyModule_Create(&module);
}
#endif
