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
    int32_t layers, hidden, input, output, sigmoid_out, token, max_batch;
    const float *embedding; /* (vocab, input) or NULL */
    mat_t wx[MAXL], wh[MAXL], head;
    float *gx, *gh, *xin, *uscale;
    uint8_t *u;
} model_t;

typedef struct {
    const void *x;
    const float *h_in, *c_in;
    float *h_out, *c_out, *y;
    int32_t batch;
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
F32_TILE(4, 4)
F32_TILE(1, 4)
F32_TILE(8, 1)
F32_TILE(1, 1)

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
S8_TILE(4, 4)
S8_TILE(1, 4)
S8_TILE(8, 1)
S8_TILE(1, 1)

/* Cover B rows x all column blocks. Groups of 4 rows take 4x4 tiles, column group outermost so
 * a group's weights stay in L1 while every row group uses them; the remaining rows take 8x1
 * tiles (8 independent accumulators hide the FMA latency when B is 1). */
static void tile_grid(const mat_t *m, const tile_fn t[4], const uint8_t *X, size_t row_bytes,
                      int ldx, const float *us, int B, float *Y, int ldy) {
    int nb = m->Npad / 16, rows4 = B - B % 4;
    for (int j = 0; j < nb && rows4;) {
        int wide = nb - j >= 4;
        for (int s = 0; s < rows4; s += 4)
            t[wide ? 0 : 1](m, j, X + s * row_bytes, ldx, us + s, Y + (size_t)s * ldy, ldy);
        j += wide ? 4 : 1;
    }
    for (int s = rows4; s < B; s++) {
        const uint8_t *x = X + s * row_bytes;
        float *y = Y + (size_t)s * ldy;
        int j = 0;
        for (; j + 8 <= nb; j += 8) t[2](m, j, x, ldx, us + s, y, ldy);
        for (; j < nb; j++) t[3](m, j, x, ldx, us + s, y, ldy);
    }
}

static const tile_fn F32_TILES[4] = {f32_tile_4_4, f32_tile_1_4, f32_tile_8_1, f32_tile_1_1};
static const tile_fn S8_TILES[4] = {s8_tile_4_4, s8_tile_1_4, s8_tile_8_1, s8_tile_1_1};

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
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
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

static void cell(const model_t *md, int B, int l, const float *gx, const float *gh, int ld,
                 const io_t *io) {
    int H = md->hidden, LH = md->layers * md->hidden;
    for (int s = 0; s < B; s++) {
        const float *a = gx + (size_t)s * ld, *r = gh + (size_t)s * ld;
        const float *h = io->h_in + (size_t)s * LH + l * H;
        float *ho = io->h_out + (size_t)s * LH + l * H;
        const float *c = md->cell == 2 ? io->c_in + (size_t)s * LH + l * H : NULL;
        float *co = md->cell == 2 ? io->c_out + (size_t)s * LH + l * H : NULL;
        for (int k = 0; k < H; k += 16) {
            __mmask16 mk = H - k >= 16 ? 0xFFFF : (__mmask16)((1u << (H - k)) - 1);
            if (md->cell == 2) {
                __m512 i = vsigmoid(ADD(LD(a), LD(r))), f = vsigmoid(ADD(LD(a + H), LD(r + H)));
                __m512 g = vtanh(ADD(LD(a + 2 * H), LD(r + 2 * H)));
                __m512 o = vsigmoid(ADD(LD(a + 3 * H), LD(r + 3 * H)));
                __m512 cn = _mm512_fmadd_ps(f, LD(c), MUL(i, g));
                ST(co, cn);
                ST(ho, MUL(o, vtanh(cn)));
            } else if (md->cell == 3) {
                __m512 rg = vsigmoid(ADD(LD(a), LD(r))), z = vsigmoid(ADD(LD(a + H), LD(r + H)));
                __m512 n = vtanh(_mm512_fmadd_ps(rg, LD(r + 2 * H), LD(a + 2 * H)));
                ST(ho, _mm512_fmadd_ps(z, _mm512_sub_ps(LD(h), n), n));  /* (1-z)n + zh */
            } else if (md->cell == 1) {
                ST(ho, _mm512_max_ps(_mm512_setzero_ps(), ADD(LD(a), LD(r))));
            } else {
                ST(ho, vtanh(ADD(LD(a), LD(r))));
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
        gemm(md, &md->wx[l], inp, ld, B, md->gx);
        gemm(md, &md->wh[l], io->h_in + l * H, LH, B, md->gh);
        cell(md, B, l, md->gx, md->gh, md->wx[l].Npad, io);
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
        part.h_in += (size_t)s0 * LH;
        part.h_out += (size_t)s0 * LH;
        if (io->c_in) {
            part.c_in += (size_t)s0 * LH;
            part.c_out += (size_t)s0 * LH;
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
    }
    return 0;
}

#ifdef EDGERNN_PYMODULE
/* With Python's headers the same library is also a module whose step1(model, io, x, check)
 * copies one sample from x's buffer and steps: no ctypes argument conversion, no numpy copy. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *py_step1(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "step1(model, io, x, check_finite)");
        return NULL;
    }
    const model_t *md = PyLong_AsVoidPtr(args[0]);
    const io_t *io = PyLong_AsVoidPtr(args[1]);
    if (PyErr_Occurred()) return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[2], &view, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    Py_ssize_t want = md->token ? (Py_ssize_t)sizeof(int64_t) : (Py_ssize_t)sizeof(float) * md->input;
    if (view.len != want) {
        PyBuffer_Release(&view);
        PyErr_Format(PyExc_BufferError, "one sample is %zd bytes, got %zd", want, view.len);
        return NULL;
    }
    memcpy((void *)io->x, view.buf, (size_t)want);
    PyBuffer_Release(&view);
    return PyBool_FromLong(edgernn_step(md, io, PyObject_IsTrue(args[3])));
}

static PyMethodDef methods[] = {
    {"step1", (PyCFunction)(void (*)(void))py_step1, METH_FASTCALL, "one sample, one step"},
    {NULL, NULL, 0, NULL},
};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fused_step", NULL, -1, methods,
                                    NULL, NULL, NULL, NULL};
PyMODINIT_FUNC PyInit__fused_step(void) { return PyModule_Create(&module); }
#endif
