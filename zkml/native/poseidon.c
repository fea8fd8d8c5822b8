/* ezkl 23's Poseidon hash (the hash of a circuit's `hashed` input) over BN254's scalar field,
 * natively: the same permutation (halo2_gadgets' primitives::permute with ezkl's PoseidonSpec:
 * width 2, rate 1, x^5, 8 full and 56 partial rounds) and sponge (ezkl's VariableLength domain:
 * the capacity starts at 2^64, no padding at rate 1; one permutation per absorbed value, the
 * output is the rate element after the last). Field arithmetic in Montgomery form on four 64-bit
 * limbs (CIOS multiplication without carry words). zkml/poseidon.py builds and loads this file;
 * its tests compare it with ezkl.poseidon_hash. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "poseidon_constants.h"

typedef unsigned __int128 u128;

static const uint64_t MODULUS[4] = {0x43e1f593f0000001ULL, 0x2833e84879b97091ULL, 0xb85045b68181585dULL,
                                    0x30644e72e131a029ULL};
static const uint64_t INV = 0xc2e1f593efffffffULL; /* -p^-1 mod 2^64 */
static const uint64_t R2[4] = {0x1bb8e645ae216da7ULL, 0x53fe3ab1e35c59e3ULL, 0x8c49833d53bb8085ULL,
                               0x0216d0b17f4e44a5ULL}; /* 2^512 mod p */

typedef struct {
    uint64_t v[4];
} fe;

static fe RC[128];
static fe M[4];
static fe CAPACITY; /* 2^64, in Montgomery form */

/* a >= p ? */
static int geq_modulus(const uint64_t a[4]) {
    for (int i = 3; i >= 0; i--) {
        if (a[i] != MODULUS[i]) return a[i] > MODULUS[i];
    }
    return 1;
}

static void sub_modulus(uint64_t a[4]) {
    u128 borrow = 0;
    for (int i = 0; i < 4; i++) {
        u128 d = (u128)a[i] - MODULUS[i] - borrow;
        a[i] = (uint64_t)d;
        borrow = (d >> 64) & 1;
    }
}

/* Montgomery multiplication, CIOS without the carry words: BN254's modulus leaves the top two
 * bits of its last limb clear (p < 2^254), so the running sum of each round fits in four limbs
 * plus the carries A and C (the "no-carry" variant of gnark-crypto's field code); one final
 * conditional subtraction. */
static inline fe mul(fe a, fe b) {
    uint64_t t0 = 0, t1 = 0, t2 = 0, t3 = 0;
    for (int i = 0; i < 4; i++) {
        const uint64_t bi = b.v[i];
        u128 x = (u128)a.v[0] * bi + t0;
        uint64_t A = (uint64_t)(x >> 64);
        t0 = (uint64_t)x;
        const uint64_t m = t0 * INV;
        u128 y = (u128)m * MODULUS[0] + t0;
        uint64_t C = (uint64_t)(y >> 64);

        x = (u128)a.v[1] * bi + t1 + A;
        A = (uint64_t)(x >> 64);
        y = (u128)m * MODULUS[1] + (uint64_t)x + C;
        C = (uint64_t)(y >> 64);
        t0 = (uint64_t)y;

        x = (u128)a.v[2] * bi + t2 + A;
        A = (uint64_t)(x >> 64);
        y = (u128)m * MODULUS[2] + (uint64_t)x + C;
        C = (uint64_t)(y >> 64);
        t1 = (uint64_t)y;

        x = (u128)a.v[3] * bi + t3 + A;
        A = (uint64_t)(x >> 64);
        y = (u128)m * MODULUS[3] + (uint64_t)x + C;
        C = (uint64_t)(y >> 64);
        t2 = (uint64_t)y;

        t3 = C + A;
    }
    fe r = {{t0, t1, t2, t3}};
    if (geq_modulus(r.v)) sub_modulus(r.v);
    return r;
}

static inline fe add(fe a, fe b) {
    fe r;
    u128 c = 0;
    for (int i = 0; i < 4; i++) {
        c += (u128)a.v[i] + b.v[i];
        r.v[i] = (uint64_t)c;
        c >>= 64;
    }
    /* both below p < 2^254: no carry out of 256 bits */
    if (geq_modulus(r.v)) sub_modulus(r.v);
    return r;
}

static inline fe sbox(fe x) {
    fe x2 = mul(x, x);
    fe x4 = mul(x2, x2);
    return mul(x4, x);
}

static fe to_montgomery(const uint64_t canonical[4]) {
    fe a, r2;
    memcpy(a.v, canonical, sizeof a.v);
    memcpy(r2.v, R2, sizeof r2.v);
    return mul(a, r2);
}

static fe from_montgomery(fe a) {
    fe one = {{1, 0, 0, 0}};
    return mul(a, one);
}

__attribute__((constructor)) static void load_constants(void) {
    for (int i = 0; i < 128; i++) RC[i] = to_montgomery(ROUND_CONSTANTS[i]);
    for (int i = 0; i < 4; i++) M[i] = to_montgomery(MDS[i]);
    const uint64_t two64[4] = {0, 1, 0, 0};
    CAPACITY = to_montgomery(two64);
}

static void permute(fe s[2]) {
    for (int r = 0; r < 64; r++) {
        s[0] = add(s[0], RC[2 * r]);
        s[1] = add(s[1], RC[2 * r + 1]);
        s[0] = sbox(s[0]);
        if (r < 4 || r >= 60) s[1] = sbox(s[1]);
        fe a = add(mul(M[0], s[0]), mul(M[1], s[1]));
        fe b = add(mul(M[2], s[0]), mul(M[3], s[1]));
        s[0] = a;
        s[1] = b;
    }
}

/* Hash `count` field elements, each 32 bytes little-endian at `message` + 32 i, into `out` (32
 * bytes little-endian). Returns 0, or i + 1 when element i is not below the modulus (nothing is
 * written then). */
size_t proofmint_poseidon_hash(const uint8_t *message, size_t count, uint8_t *out) {
    fe s[2];
    memset(s, 0, sizeof s);
    s[1] = CAPACITY;
    for (size_t i = 0; i < count; i++) {
        uint64_t limbs[4];
        memcpy(limbs, message + 32 * i, 32); /* x86-64 and aarch64 are little-endian */
        if (geq_modulus(limbs)) return i + 1;
        s[0] = add(s[0], to_montgomery(limbs));
        permute(s);
    }
    fe h = from_montgomery(s[0]);
    memcpy(out, h.v, 32);
    return 0;
}
