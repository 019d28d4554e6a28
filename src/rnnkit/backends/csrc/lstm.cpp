// Peephole LSTM and layer-norm LSTM: native time loops with hand-written BPTT (see common.h for
// the ABI, the layout and the keep / rmask conventions). xp [T, B, 4H] already holds the input
// projection plus both biases (the LN-LSTM's: LN(W_ih x; g_ih) + b_ih + b_hh).
#include "common.h"

namespace rnnkit {
namespace {

// The end of an LSTM step for one row: c = k_c c_{t-1} + (1 - k_c) c~ and
// h = k_h h_{t-1} + (1 - k_h) o th, th = tanh(c~) or tanh(LN(c~)) (all [H])
template <typename T>
inline void lstm_keep_row(const T* cp, const T* hp, const T* zc, const T* zh, const T* cc,
                          const T* og, const T* th, T* c, T* h, int64_t H) {
  #pragma omp simd  // independent j (GCC gives up its alias checks here)
  for (int64_t j = 0; j < H; ++j) {
    c[j] = zc[j] * cp[j] + (T(1) - zc[j]) * cc[j];
    h[j] = zh[j] * hp[j] + (T(1) - zh[j]) * (og[j] * th[j]);
  }
}

// ---------------------------------------------------------------- peephole LSTM ---------------
// i = s(a_i + p_i c_{t-1}), f = s(a_f + p_f c_{t-1}), g = tanh(a_g), c~ = f c_{t-1} + i g,
// o = s(a_o + p_o c~), h~ = o tanh(c~); then zoneout/keep.
// ptrs: xp, h0, c0, w_hh^T [H, 4H], w_ch [3, H], keep_h, keep_c, rmask
//       -> hs, cs [T, B, H], gates [T, B, 4H] (activated), ct [T, B, H] (c~)
template <typename T>
void peephole_forward(const Args<T>& a) {
  const int64_t Tn = a.Tn, B = a.B, H = a.H, G = 4 * H, BH = B * H;
  const T *xpp = a[0], *h0 = a[1], *c0 = a[2], *w = a[3], *pch = a[4];
  const T *kh = a[5], *kc = a[6], *rm = a[7];
  T *hsp = a[8], *csp = a[9], *gp = a[10], *ctp = a[11];
  const T *pi = pch, *pf = pch + H, *po = pch + 2 * H;
  std::vector<T> zeros(BH, T(0)), hm(rm ? BH : 0), th(H);
  for (int64_t t = 0; t < Tn; ++t) {
    const T* hp = t ? hsp + (t - 1) * BH : h0;
    const T* cp = t ? csp + (t - 1) * BH : c0;
    T* g4 = gp + t * B * G;  // [B, 4H]: pre-activations, then activated gates
    std::memcpy(g4, xpp + t * B * G, sizeof(T) * B * G);
    gemm_nn<T>(B, G, H, masked(hp, rm, hm.data(), BH), w, T(1), g4);
    const T* zh = keep_at(kh, t, BH, zeros);
    const T* zc = keep_at(kc, t, BH, zeros);
    T* h = hsp + t * BH;
    T* c = csp + t * BH;
    T* cc = ctp + t * BH;
    for (int64_t b = 0; b < B; ++b) {
      T* gb = g4 + b * G;
      const int64_t o = b * H;
      for (int64_t j = 0; j < H; ++j) {
        gb[j] += pi[j] * cp[o + j];
        gb[H + j] += pf[j] * cp[o + j];
      }
      sigmoid_inplace(gb, 2 * H);
      tanh_into(gb + 2 * H, gb + 2 * H, H);
      #pragma omp simd  // independent j (GCC gives up its alias checks here)
      for (int64_t j = 0; j < H; ++j) {
        const T cn = gb[H + j] * cp[o + j] + gb[j] * gb[2 * H + j];
        cc[o + j] = cn;
        gb[3 * H + j] += po[j] * cn;
      }
      sigmoid_inplace(gb + 3 * H, H);
      tanh_into(cc + o, th.data(), H);
      lstm_keep_row(cp + o, hp + o, zc + o, zh + o, cc + o, gb + 3 * H, th.data(), c + o, h + o,
                    H);
    }
  }
}

// ptrs: gh, gc [T, B, H] (upstream), hs, cs, gates, ct, h0, c0, w_hh [4H, H], w_ch, keep_h,
//       keep_c, rmask -> da [T, B, 4H], dh0, dc0 [B, H], dw_hh [4H, H], dw_ch [3, H] (the last
//       two zero-initialized)
template <typename T>
void peephole_backward(const Args<T>& a) {
  const int64_t Tn = a.Tn, B = a.B, H = a.H, G = 4 * H, BH = B * H;
  const T *ghp = a[0], *gcp = a[1], *hsp = a[2], *csp = a[3], *gp = a[4], *ctp = a[5];
  const T *h0 = a[6], *c0 = a[7], *w = a[8], *pch = a[9], *kh = a[10], *kc = a[11];
  const T* rm = a[12];
  T *dap = a[13], *dh0 = a[14], *dc0 = a[15], *dp = a[17];
  WeightGrad<T> dw(B, G, H, a[16]);
  const T *pi = pch, *pf = pch + H, *po = pch + 2 * H;
  T *dpi = dp, *dpf = dp + H, *dpo = dp + 2 * H;
  std::vector<T> zeros(BH, T(0)), dh(BH, T(0)), dc(BH, T(0)), rec(BH), th(H);
  for (int64_t t = Tn - 1; t >= 0; --t) {
    const T* cp = t ? csp + (t - 1) * BH : c0;
    const T* g4 = gp + t * B * G;
    const T* cc = ctp + t * BH;
    T* d4 = dap + t * B * G;
    const T* zh = keep_at(kh, t, BH, zeros);
    const T* zc = keep_at(kc, t, BH, zeros);
    const T* ght = ghp + t * BH;
    const T* gct = gcp + t * BH;
    for (int64_t b = 0; b < B; ++b) {
      const T* gb = g4 + b * G;
      T* db = d4 + b * G;
      const int64_t o = b * H;
      tanh_into(cc + o, th.data(), H);
      #pragma omp simd  // independent j (GCC gives up its alias checks here)
      for (int64_t j = 0; j < H; ++j) {
        const int64_t k = o + j;
        const T dhk = dh[k] + ght[k], dck = dc[k] + gct[k];
        const T dhn = (T(1) - zh[k]) * dhk;
        const T i = gb[j], f = gb[H + j], g = gb[2 * H + j], og = gb[3 * H + j];
        const T cn = cc[k], tc = th[j], cpk = cp[k];
        const T dao = dhn * tc * og * (T(1) - og);
        const T dcn = (T(1) - zc[k]) * dck + dhn * og * (T(1) - tc * tc) + dao * po[j];
        dpo[j] += dao * cn;
        const T dai = dcn * g * i * (T(1) - i);
        const T daf = dcn * cpk * f * (T(1) - f);
        const T dag = dcn * i * (T(1) - g * g);
        dpi[j] += dai * cpk;
        dpf[j] += daf * cpk;
        db[j] = dai; db[H + j] = daf; db[2 * H + j] = dag; db[3 * H + j] = dao;
        dc[k] = dcn * f + dai * pi[j] + daf * pf[j] + zc[k] * dck;
        dh[k] = zh[k] * dhk;  // the direct path; the recurrent one is added below
      }
    }
    backprop_recurrent<T>(B, H, G, d4, w, rm, rec.data(), dh.data());
    // da is also d (W_hh h_{t-1}): a copy for the chunked dW_hh
    std::memcpy(dw.step_rows(t ? hsp + (t - 1) * BH : h0, rm), d4, sizeof(T) * B * G);
  }
  dw.flush();
  std::copy(dh.begin(), dh.end(), dh0);
  std::copy(dc.begin(), dc.end(), dc0);
}

// ---------------------------------------------------------------- layer-norm LSTM ------------
// r = W_hh (h_{t-1} * rmask); a = xp + g_hh r^ with r^ = LN(r); i, f, o = s(.), g = tanh(.);
// c~ = f c_{t-1} + i g; h~ = o tanh(g_c c^ + b_c) with c^ = LN(c~); then zoneout/keep.
// Saved for the backward: r^, c^ and their rstd; the gates and tanh(g_c c^ + b_c) are
// recomputed from xp, r^ and c^ there (cheaper than first-touching 5H more floats per row:
// fresh memory costs ~1.5 us a page here, more than the whole forward's arithmetic).

// a = xp + g_hh r^ activated in place: i, f, o = s(.), g = tanh(.) (one row, [4H])
template <typename T>
inline void lnlstm_gates(const T* xb, const T* gh, const T* rh, T* gb, int64_t H) {
  #pragma omp simd
  for (int64_t j = 0; j < 4 * H; ++j) gb[j] = xb[j] + gh[j] * rh[j];
  sigmoid_inplace(gb, 2 * H);
  tanh_into(gb + 2 * H, gb + 2 * H, H);
  sigmoid_inplace(gb + 3 * H, H);
}

// tanh(g_c c^ + b_c) (one row, [H])
template <typename T>
inline void lnlstm_cell_out(const T* gc, const T* bc, const T* ch, T* th, int64_t H) {
  #pragma omp simd
  for (int64_t j = 0; j < H; ++j) th[j] = gc[j] * ch[j] + bc[j];
  tanh_into(th, th, H);
}

// ptrs: xp, h0, c0, w_hh^T [H, 4H], g_hh [4H], g_c, b_c [H], keep_h, keep_c, rmask
//       -> hs, cs [T, B, H]; with flag = 1 (for a backward) also r^ [T, B, 4H], rstd_r [T, B],
//          c^ [T, B, H], rstd_c [T, B] (else null: scratch rows); scalar: eps
template <typename T>
void lnlstm_forward(const Args<T>& a) {
  const int64_t Tn = a.Tn, B = a.B, H = a.H, G = 4 * H, BH = B * H;
  const T eps = T(a.scalar);
  const T *xpp = a[0], *h0 = a[1], *c0 = a[2], *w = a[3], *gh = a[4], *gc = a[5], *bc = a[6];
  const T *kh = a[7], *kc = a[8], *rm = a[9];
  T *hsp = a[10], *csp = a[11];
  const bool save = a.flag;
  T *rhp = save ? a[12] : nullptr, *rsp = save ? a[13] : nullptr;
  T *chp = save ? a[14] : nullptr, *csdp = save ? a[15] : nullptr;
  std::vector<T> zeros(BH, T(0)), hm(rm ? BH : 0), r(B * G), cc(H), gs(G), rs_row(G), ch_row(H),
      th(H);
  T rstd_scratch;
  for (int64_t t = 0; t < Tn; ++t) {
    const T* hp = t ? hsp + (t - 1) * BH : h0;
    const T* cp = t ? csp + (t - 1) * BH : c0;
    gemm_nn<T>(B, G, H, masked(hp, rm, hm.data(), BH), w, T(0), r.data());
    const T* zh = keep_at(kh, t, BH, zeros);
    const T* zc = keep_at(kc, t, BH, zeros);
    for (int64_t b = 0; b < B; ++b) {
      const int64_t row = t * B + b, o = row * H;
      T* gb = gs.data();
      T* rhb = save ? rhp + row * G : rs_row.data();
      T* ch = save ? chp + o : ch_row.data();
      (save ? rsp[row] : rstd_scratch) = normalize_row(r.data() + b * G, rhb, G, eps);
      lnlstm_gates(xpp + row * G, gh, rhb, gb, H);
      const T* cpb = cp + b * H;
      #pragma omp simd
      for (int64_t j = 0; j < H; ++j) cc[j] = gb[H + j] * cpb[j] + gb[j] * gb[2 * H + j];
      (save ? csdp[row] : rstd_scratch) = normalize_row(cc.data(), ch, H, eps);
      lnlstm_cell_out(gc, bc, ch, th.data(), H);
      lstm_keep_row(cpb, hp + b * H, zc + b * H, zh + b * H, cc.data(), gb + 3 * H, th.data(),
                    csp + o, hsp + o, H);
    }
  }
}

// ptrs: gh, gc [T, B, H] (upstream), xp, hs, cs, r^, rstd_r, c^, rstd_c, h0, c0, w_hh [4H, H],
//       g_hh, g_c, b_c, keep_h, keep_c, rmask
//       -> da [T, B, 4H] (d xp), dh0, dc0 [B, H], dw_hh [4H, H], dg_hh [4H], dg_c, db_c [H]
//          (the last four zero-initialized)
// Per row, after recomputing the gates: three passes -- the o gate and the cell LN's sums; the
// i, f, g gates and the recurrent LN's sums; the recurrent LN backward.
template <typename T>
void lnlstm_backward(const Args<T>& a) {
  const int64_t Tn = a.Tn, B = a.B, H = a.H, G = 4 * H, BH = B * H;
  const T *ghs = a[0], *gcs = a[1], *xpp = a[2], *hsp = a[3], *csp = a[4], *rhp = a[5];
  const T *rsp = a[6], *chp = a[7], *csdp = a[8], *h0 = a[9], *c0 = a[10], *w = a[11];
  const T *gh = a[12], *gc = a[13], *bc = a[14], *kh = a[15], *kc = a[16], *rm = a[17];
  T *dap = a[18], *dh0 = a[19], *dc0 = a[20], *dgh = a[22], *dgc = a[23], *dbc = a[24];
  WeightGrad<T> dw(B, G, H, a[21]);
  std::vector<T> zeros(BH, T(0)), dh(BH, T(0)), dc(BH, T(0)), rec(BH), dcn(H), dy(G), gs(G),
      ths(H);
  for (int64_t t = Tn - 1; t >= 0; --t) {
    const T* cp = t ? csp + (t - 1) * BH : c0;
    T* dr4 = dw.step_rows(t ? hsp + (t - 1) * BH : h0, rm);  // [B, 4H]: d (W_hh h_{t-1})
    const T* zh = keep_at(kh, t, BH, zeros);
    const T* zc = keep_at(kc, t, BH, zeros);
    for (int64_t b = 0; b < B; ++b) {
      const int64_t row = t * B + b, o = b * H;
      const T* rh = rhp + row * G;
      const T* ch = chp + row * H;
      const T *ght = ghs + row * H, *gct = gcs + row * H;
      T* gb = gs.data();
      T* th = ths.data();
      lnlstm_gates(xpp + row * G, gh, rh, gb, H);
      lnlstm_cell_out(gc, bc, ch, th, H);
      T* db = dap + row * G;
      // through h~ = o tanh(g_c c^ + b_c): d a_o, and dcn = dL/dc^ with its LN sums
      T m1c = 0, m2c = 0, m1 = 0, m2 = 0;
      #pragma omp simd reduction(+ : m1c, m2c, m1, m2)
      for (int64_t j = 0; j < H; ++j) {
        const int64_t k = o + j;
        const T dhk = dh[k] + ght[j];
        const T dhn = (T(1) - zh[k]) * dhk;
        const T og = gb[3 * H + j], tc = th[j];
        const T dao = dhn * tc * og * (T(1) - og);
        db[3 * H + j] = dao;
        const T dln = dhn * og * (T(1) - tc * tc);  // dL/d(g_c c^ + b_c)
        dgc[j] += dln * ch[j];
        dbc[j] += dln;
        const T d = dln * gc[j];
        dcn[j] = d;
        m1c += d;
        m2c += d * ch[j];
        dh[k] = zh[k] * dhk;  // direct path; the recurrent one is added after the GEMM
        const T dyo = dao * gh[3 * H + j];  // a = xp + g_hh r^
        dgh[3 * H + j] += dao * rh[3 * H + j];
        dy[3 * H + j] = dyo;
        m1 += dyo;
        m2 += dyo * rh[3 * H + j];
      }
      m1c /= T(H);
      m2c /= T(H);
      const T rc = csdp[row];
      #pragma omp simd reduction(+ : m1, m2)
      for (int64_t j = 0; j < H; ++j) {
        const int64_t k = o + j;
        const T dck = dc[k] + gct[j];
        const T dctot = rc * (dcn[j] - m1c - ch[j] * m2c) + (T(1) - zc[k]) * dck;
        const T i = gb[j], f = gb[H + j], g = gb[2 * H + j];
        const T dai = dctot * g * i * (T(1) - i);
        const T daf = dctot * cp[k] * f * (T(1) - f);
        const T dag = dctot * i * (T(1) - g * g);
        db[j] = dai;
        db[H + j] = daf;
        db[2 * H + j] = dag;
        dc[k] = dctot * f + zc[k] * dck;
        dgh[j] += dai * rh[j];
        dgh[H + j] += daf * rh[H + j];
        dgh[2 * H + j] += dag * rh[2 * H + j];
        const T yi = dai * gh[j], yf = daf * gh[H + j], yg = dag * gh[2 * H + j];
        dy[j] = yi;
        dy[H + j] = yf;
        dy[2 * H + j] = yg;
        m1 += yi + yf + yg;
        m2 += yi * rh[j] + yf * rh[H + j] + yg * rh[2 * H + j];
      }
      m1 /= T(G);
      m2 /= T(G);
      const T rs = rsp[row];
      T* dr = dr4 + b * G;
      #pragma omp simd
      for (int64_t j = 0; j < G; ++j) dr[j] = rs * (dy[j] - m1 - rh[j] * m2);
    }
    backprop_recurrent<T>(B, H, G, dr4, w, rm, rec.data(), dh.data());
  }
  dw.flush();
  std::copy(dh.begin(), dh.end(), dh0);
  std::copy(dc.begin(), dc.end(), dc0);
}

}  // namespace
}  // namespace rnnkit

RNNKIT_EXPORT(peephole_forward, rnnkit::peephole_forward)
RNNKIT_EXPORT(peephole_backward, rnnkit::peephole_backward)
RNNKIT_EXPORT(lnlstm_forward, rnnkit::lnlstm_forward)
RNNKIT_EXPORT(lnlstm_backward, rnnkit::lnlstm_backward)
