//! RFC 6455 masking: XOR with a repeating 4-byte key.

/// Bytes handled per step; a fixed-size block lets the compiler use vector XOR.
const BLOCK: usize = 32;

fn key_block(key: [u8; 4]) -> [u8; BLOCK] {
    std::array::from_fn(|i| key[i % 4])
}

/// Writes `src ^ key` into `out` (same length); the key phase starts at `src[0]`.
pub fn xor(src: &[u8], out: &mut [u8], key: [u8; 4]) {
    debug_assert_eq!(src.len(), out.len());
    let pattern = key_block(key);
    let mut src_blocks = src.chunks_exact(BLOCK);
    let mut out_blocks = out.chunks_exact_mut(BLOCK);
    for (s, o) in (&mut src_blocks).zip(&mut out_blocks) {
        for ((o, s), k) in o.iter_mut().zip(s).zip(&pattern) {
            *o = s ^ k;
        }
    }
    // Whole blocks keep the key phase at 0, so the tail starts at key[0] too.
    for ((o, s), k) in out_blocks
        .into_remainder()
        .iter_mut()
        .zip(src_blocks.remainder())
        .zip(key.iter().cycle())
    {
        *o = s ^ k;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(data: &[u8], key: [u8; 4]) -> Vec<u8> {
        data.iter()
            .enumerate()
            .map(|(i, b)| b ^ key[i % 4])
            .collect()
    }

    #[test]
    fn matches_bytewise_xor_at_every_length() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        for len in 0..200 {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mut out = vec![0; len];
            xor(&data, &mut out, key);
            assert_eq!(out, naive(&data, key));
        }
    }
}
