// webattn common: the per-row auxiliary output of the forward kernels (lse for softmax, rem
// for stick-breaking), bound as raw u32 bits so that -inf can be written exactly on
// implementations that assume finite floats. Index: unit * Tq + row - aux_base.

@group(0) @binding(5) var<storage, read_write> aux: array<u32>;
