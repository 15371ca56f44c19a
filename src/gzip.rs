//! gzip for scrapes, assembled from per-family pieces that are compressed once and reused
//! while the family does not change.
//!
//! Each [`GzPiece`] is raw deflate data for one part of the exposition, compressed on its
//! own (a fresh compressor, so it refers to nothing before it) and ended with a sync flush
//! (byte-aligned, not final). [`assemble`] writes ONE valid gzip member: the gzip header,
//! the pieces in order, an empty final block, and the trailer (CRC-32 combined from the
//! pieces' CRCs, and the total length). Any gzip reader accepts it; it is not a
//! concatenation of gzip members (which some readers stop after the first of).
//!
//! Failure modes: none beyond the compressor's (an error there is a bug in flate2 and is
//! returned as `std::io::Error`).

use bytes::Bytes;

use crate::store::Snapshot;
use flate2::{Compress, Compression, FlushCompress};

/// One part of an exposition, deflated on its own.
#[derive(Debug, Clone)]
pub struct GzPiece {
    /// Raw deflate data ending with a sync flush.
    pub deflate: Bytes,
    crc: crc32fast::Hasher,
    len: u64,
}

impl GzPiece {
    /// Deflate `parts` (concatenated) at level 1.
    pub fn new(parts: &[&[u8]]) -> std::io::Result<GzPiece> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let mut c = Compress::new(Compression::fast(), false);
        let mut out = Vec::with_capacity(total / 6 + 64);
        let mut crc = crc32fast::Hasher::new();
        let last = parts.len().saturating_sub(1);
        for (i, part) in parts.iter().enumerate() {
            crc.update(part);
            let flush = if i == last {
                FlushCompress::Sync
            } else {
                FlushCompress::None
            };
            let mut input = *part;
            loop {
                if out.capacity() - out.len() < 64 {
                    out.reserve(out.capacity().max(1024));
                }
                let before = c.total_in();
                c.compress_vec(input, &mut out, flush)
                    .map_err(std::io::Error::other)?;
                input = &input[(c.total_in() - before) as usize..];
                // Done with this part when its input is consumed and, for the final sync
                // flush, the compressor had room to write everything out.
                if input.is_empty() && (flush == FlushCompress::None || out.len() < out.capacity())
                {
                    break;
                }
            }
        }
        if parts.is_empty() {
            // Still a valid (empty) sync-flushed piece.
            c.compress_vec(&[], &mut out, FlushCompress::Sync)
                .map_err(std::io::Error::other)?;
        }
        Ok(GzPiece {
            deflate: Bytes::from(out),
            crc,
            len: total as u64,
        })
    }

    /// Uncompressed length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the piece holds no uncompressed bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The gzip header: no name, no mtime, OS unknown.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
/// An empty final block with fixed Huffman codes (BFINAL=1, BTYPE=01, end-of-block).
const FINAL_BLOCK: [u8; 2] = [0x03, 0x00];

/// One gzip member made of `pieces`, as chunks to write in order.
pub fn assemble(pieces: &[GzPiece]) -> Vec<Bytes> {
    let mut crc = crc32fast::Hasher::new();
    let mut total = 0u64;
    let mut out = Vec::with_capacity(pieces.len() + 2);
    out.push(Bytes::from_static(&HEADER));
    for p in pieces {
        crc.combine(&p.crc);
        total += p.len;
        out.push(p.deflate.clone());
    }
    let mut trailer = Vec::with_capacity(10);
    trailer.extend_from_slice(&FINAL_BLOCK);
    trailer.extend_from_slice(&crc.finalize().to_le_bytes());
    trailer.extend_from_slice(&(total as u32).to_le_bytes());
    out.push(Bytes::from(trailer));
    out
}

/// Families deflated for a scrape: a family whose text did not change since an earlier
/// gzip scrape reuses that scrape's piece; the others (and the self-metrics) are
/// deflated now, at level 1 (about 13x smaller, several times faster than the default
/// level), and returned for caching.
pub type Fresh = Vec<(std::sync::Arc<str>, u64, GzPiece)>;

pub fn gzip_snapshot(snapshot: &Snapshot, own: &[u8]) -> std::io::Result<(Vec<Bytes>, Fresh)> {
    let mut pieces = Vec::with_capacity(snapshot.families.len() + 1);
    let mut fresh = Vec::new();
    for f in &snapshot.families {
        let piece = match &f.gz {
            Some(p) => p.clone(),
            None => {
                let p = GzPiece::new(&[&f.header, &f.lines])?;
                fresh.push((f.name.clone(), f.version, p.clone()));
                p
            }
        };
        pieces.push(piece);
    }
    pieces.push(GzPiece::new(&[own])?);
    Ok((assemble(&pieces), fresh))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    fn gunzip(chunks: &[Bytes]) -> Vec<u8> {
        let all: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
        let mut out = Vec::new();
        // A single-member decoder: it must read everything.
        flate2::read::GzDecoder::new(&all[..])
            .read_to_end(&mut out)
            .expect("valid gzip");
        out
    }

    #[test]
    fn pieces_make_one_valid_member() {
        let a = GzPiece::new(&[b"# HELP a x\n", b"a 1\n"]).unwrap();
        let b = GzPiece::new(&[b"b{l=\"v\"} 2\n"]).unwrap();
        let empty = GzPiece::new(&[]).unwrap();
        let out = gunzip(&assemble(&[a.clone(), empty, b.clone()]));
        assert_eq!(out, b"# HELP a x\na 1\nb{l=\"v\"} 2\n");
        assert_eq!(gunzip(&assemble(&[])), b"");
        // Reused pieces in another order still form a valid stream.
        assert_eq!(
            gunzip(&assemble(&[b, a])),
            b"b{l=\"v\"} 2\n# HELP a x\na 1\n"
        );
    }

    #[test]
    fn large_and_incompressible_inputs() {
        let big: Vec<u8> = (0..3_000_000u32)
            .flat_map(|i| format!("m{{i=\"{i}\"}} {i}\n").into_bytes())
            .collect();
        let mut x = 0x9e3779b97f4a7c15u64;
        let noise: Vec<u8> = (0..1_000_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let p = GzPiece::new(&[&big[..1000], &big[1000..]]).unwrap();
        let q = GzPiece::new(&[&noise]).unwrap();
        assert!(
            p.deflate.len() < big.len() / 3,
            "{} of {}",
            p.deflate.len(),
            big.len()
        );
        let out = gunzip(&assemble(&[p, q]));
        assert_eq!(out.len(), big.len() + noise.len());
        assert!(out[..big.len()] == big[..] && out[big.len()..] == noise[..]);
    }
}
