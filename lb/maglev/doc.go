// Package maglev builds weighted Maglev lookup tables for the XDP load
// balancer: for one service, a table of a prime number of slots, each
// naming the backend that flows hashing to it are sent to (Eisenbud et
// al., "Maglev: A Fast and Reliable Software Network Load Balancer",
// NSDI 2016, §3.4).
//
// # Stability
//
// A backend's preference list over a table of M slots is offset,
// offset+skip, offset+2·skip, … (mod M), with offset = h₁ mod M and
// skip = h₂ mod (M−1) + 1, h₁ and h₂ being 64-bit xxhash of the backend's
// Key under two fixed seeds. M prime makes every skip coprime with M, so
// the list visits every slot once. The table is a function of the set of
// (Key, Weight) pairs and M alone: not of the order of the input (backends
// are handled in key order), nor of the process, host or run. Load
// balancers behind one ECMP group therefore build identical tables and a
// restart moves no flow. The hash and seeds are part of that contract;
// TestGolden pins them.
//
// # Weights
//
// The paper fills the table in rounds: each backend in turn takes the
// first still-free slot of its preference list. Here turns are weighted:
//
//  1. Quotas. Backend i is due size·wᵢ/W slots (W the total weight). It
//     gets ⌊size·wᵢ/W⌋, and the few slots left over go one each to the
//     largest remainders (Hamilton's method; ties to the lower key). So
//     every backend owns within one slot of its exact share, strictly:
//     |slotsᵢ − size·wᵢ/W| < 1. The relative error is below 1/(size·wᵢ/W):
//     under 1% for any backend due 100 slots or more. A backend due less
//     than one slot may get none; every backend of weight > 0 gets at
//     least one when size ≥ W/w_min (size ≥ n with equal weights).
//  2. Order. Backend i's k-th turn comes at virtual time k/wᵢ (as in
//     weighted fair queueing), turns at equal times in key order, and a
//     backend stops at its quota. Each backend's turns are thus spread
//     evenly over the whole fill, which is what keeps Maglev's small
//     disruption; with equal weights the order is exactly the paper's
//     round robin and the table exactly the paper's.
//
// Katran's MaglevHashV2 uses the same kind of order, quantized to rounds
// of the largest weight, but no quotas: it stops when the table is full,
// part-way through the slower backends' cycles, so shares are off by up to
// about n·wᵢ/W slots. With one backend
// of weight 65535 and 999 of weight 1 in 65537 slots, that order gives the
// heavy one 65535 slots for 64555 due and 997 of the light ones none;
// quotas give each its share to within one slot.
//
// Disruption: when one of n backends leaves, joins or changes weight, the
// slots that move are its own plus a small collateral share of the others'
// (measured at 65537 slots: 0.15–0.3% of the others' slots for n = 10, up
// to about 0.6% for n = 100 and 1,000; see TestDisruption).
//
// # Cost
//
// A build hashes each key twice, sorts the backends by key, and fills the
// table, probing a map of taken slots: O(M log M) probes on average per
// the paper, about 10 per slot measured at M = 65537 with 100 or 1,000
// backends, most of them in the last turns (at M = 12809 with 100
// backends, 8.7 per slot, half of them for the last 128 slots). So once
// at most about √M/2..√M slots are free, a turn scans the list of free
// slots instead and takes the one fewest steps ahead on its preference
// list (a modular inverse of the stride per backend, one multiplication
// per free slot): the same slot as probing, for O(M) work in all in the
// tail. Scheduling adds O(n log n + M + R·log g) for g distinct weights
// and R group rounds: a heap orders the groups of equal weight, and a
// turn that leaves its group first in the heap does not touch the heap.
// Builder keeps its scratch between builds and, given the previous table
// as dst, allocates nothing.
package maglev
