//! The reader: an opened, checked file whose voxels are inflated slab by slab while a second
//! thread converts them (see [`VolumeReader::read_into`]), and the memory tricks that keep a
//! whole-image read fast (huge pages, pre-faulted buffers).
use super::geometry::{affine_from_header, header_affine, Geometry};
use super::header::{
    check_data_fits, describe, parse_header, scaling, volume_dims, DataType, GZIP_MAGIC,
    HEADER_BYTES,
};
use super::transpose::{VolumeDecoder, VolumeMap, TILE};
use crate::{Error, Orientation, Result};
use flate2::bufread::MultiGzDecoder;
use ndarray::{Array4, ArrayViewMut4};
use nifti::{Endianness, NiftiHeader};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// An opened NIfTI file whose header has been checked, positioned at its first voxel.
/// The compressed file sits in memory; voxels are inflated slab by slab while they are converted.
pub(super) struct VolumeReader {
    pub(super) path: PathBuf,
    pub(super) header: NiftiHeader,
    pub(super) dtype: DataType,
    /// Spatial shape in source order.
    pub(super) shape: [usize; 3],
    pub(super) channels: usize,
    /// Bytes of voxel data the header promises (checked against the file on open).
    data_bytes: usize,
    pub(super) stream: Box<dyn Read + Send>,
    /// Whether `stream` inflates gzip (its errors then speak of gzip).
    pub(super) gzip: bool,
}

impl VolumeReader {
    pub(super) fn open(path: &Path) -> Result<VolumeReader> {
        let file = std::fs::read(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::at(path, "no such file"),
            _ => Error::at(path, format!("cannot read: {e}")),
        })?;
        let file_bytes = file.len() as u64;
        let gzip = file.starts_with(&GZIP_MAGIC);
        let mut stream: Box<dyn Read + Send> = if gzip {
            Box::new(MultiGzDecoder::new(std::io::Cursor::new(file)))
        } else {
            Box::new(std::io::Cursor::new(file))
        };
        let mut head = vec![0u8; HEADER_BYTES];
        let got = fill(&mut stream, &mut head).map_err(|e| stream_error(path, &e, gzip))?;
        head.truncate(got);
        let header = parse_header(path, &head)?;
        let dtype = DataType::from_code(header.datatype).ok_or_else(|| {
            Error::at(
                path,
                format!(
                    "unsupported datatype code {} (brainseg reads uint8, int8, int16, uint16, int32, uint32, float32, float64)",
                    header.datatype
                ),
            )
        })?;
        let (shape, channels) = volume_dims(path, &header)?;
        affine_from_header(path, &header)?;
        if !(header.vox_offset >= HEADER_BYTES as f32 && header.vox_offset <= (1u32 << 30) as f32) {
            return Err(Error::at(
                path,
                format!(
                    "impossible vox_offset {} (must be at least 352)",
                    header.vox_offset
                ),
            ));
        }
        // Skip extensions up to the first voxel.
        let skip = header.vox_offset as usize - got;
        let skipped = std::io::copy(&mut (&mut stream).take(skip as u64), &mut std::io::sink())
            .map_err(|e| stream_error(path, &e, gzip))?;
        if got < HEADER_BYTES || skipped < skip as u64 {
            return Err(Error::at(
                path,
                format!(
                    "truncated file: it ends before the first voxel (offset {})",
                    header.vox_offset
                ),
            ));
        }
        let data_bytes = check_data_fits(
            path,
            shape,
            channels,
            dtype,
            header.vox_offset as u64,
            file_bytes,
            gzip,
        )?;
        Ok(VolumeReader {
            path: path.to_path_buf(),
            header,
            dtype,
            shape,
            channels,
            data_bytes,
            stream,
            gzip,
        })
    }

    pub(super) fn geometry(&self) -> Geometry {
        Geometry {
            header: self.header.clone(),
            orientation: Orientation::from_affine(&header_affine(&self.header)),
            source_shape: self.shape,
        }
    }

    fn describe(&self) -> String {
        describe(self.shape, self.channels, self.dtype)
    }

    /// Inflate and convert every voxel into canonical `out` `(C, X, Y, Z)` (standard layout).
    /// This thread inflates slabs of z-planes. With `helper`, a second thread converts them
    /// meanwhile (after faulting in the output while the first slab inflates), and this one joins
    /// it once all is inflated; without it (the caller already reads files in parallel) this
    /// thread converts each slab itself.
    pub(super) fn read_into(
        mut self,
        mut out: ArrayViewMut4<f32>,
        o: &Orientation,
        helper: bool,
    ) -> Result<()> {
        let [nx, ny, nz] = self.shape;
        let planes = slab_planes(nz, self.channels, helper);
        let slab_bytes = planes * nx * ny * self.dtype.size();
        let map = VolumeMap::new(self.shape, o);
        let decoder = VolumeDecoder {
            dtype: self.dtype,
            map,
            scale: scaling(&self.header),
            big: self.header.endianness == Endianness::Big,
        };
        // Each volume is cut into parts along canonical axis 0: contiguous, so two threads can
        // fill different parts at once.
        let [n0, n1, n2] = map.canonical;
        // Whole tiles of rows, so that only a volume's last part has a partial tile.
        let part_rows = n0.div_ceil(PARTS).next_multiple_of(TILE);
        let parts_per_volume = n0.div_ceil(part_rows);
        let slice = out.as_slice_mut().expect("standard layout");
        // Each part with whether anything was converted into it yet.
        let parts: Vec<Mutex<(&mut [f32], bool)>> = slice
            .chunks_mut(n0 * n1 * n2)
            .flat_map(|v| v.chunks_mut(part_rows * n1 * n2))
            .map(|part| Mutex::new((part, false)))
            .collect();
        let convert = |slab: &Slab, p: usize| {
            let mut part = parts[slab.channel * parts_per_volume + p]
                .lock()
                .expect("converting does not panic");
            decoder.convert(&slab.bytes, slab.z0, p * part_rows, part.0);
            part.1 = true;
        };
        let slabs = (0..self.channels).flat_map(|c| (0..nz).step_by(planes).map(move |z0| (c, z0)));
        if !helper {
            let mut bytes = Vec::new();
            for (channel, z0) in slabs {
                let slab = self.inflate_slab(channel, z0, planes, bytes)?;
                (0..parts_per_volume).for_each(|p| convert(&slab, p));
                bytes = slab.bytes;
            }
            return self.finish().and_then(|()| self.check_finite(&out, o));
        }
        let (work_tx, work_rx) = std::sync::mpsc::channel::<(Arc<Slab>, usize)>();
        let work_rx = Mutex::new(work_rx);
        let (empty_tx, empty_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let run = |(slab, p): (Arc<Slab>, usize)| {
            convert(&slab, p);
            // The slab's last part hands its buffer back for reuse.
            if let Some(slab) = Arc::into_inner(slab) {
                let _ = empty_tx.send(slab.bytes);
            }
        };
        // The lock is never held while converting: the other thread may take parts meanwhile.
        let next = || {
            work_rx
                .lock()
                .expect("converting does not panic")
                .recv()
                .ok()
        };
        std::thread::scope(|scope| -> Result<()> {
            scope.spawn(|| {
                // Idle until the first slab is inflated: use the time for page faults, which would
                // otherwise land on whoever converts (the last slab is converted by both threads).
                // Without memory for a spare, the two threads share one buffer.
                if let Some(spare) = new_buffer(slab_bytes) {
                    let _ = empty_tx.send(touch_pages(spare));
                }
                for part in &parts {
                    let mut part = part.lock().expect("converting does not panic");
                    // Zeros only where nothing is converted yet: this thread may be late.
                    if !part.1 {
                        touch_pages(&mut *part.0);
                    }
                }
                while let Some(item) = next() {
                    run(item);
                }
            });
            // This thread allocates one buffer; the helper adds a second (the spare).
            let mut allocated = false;
            for (channel, z0) in slabs {
                let bytes = loop {
                    if let Ok(bytes) = empty_rx.try_recv() {
                        break bytes;
                    }
                    if !allocated {
                        allocated = true;
                        break new_buffer(slab_bytes)
                            .ok_or_else(|| no_memory(&self.path, slab_bytes, "inflated voxels"))?;
                    }
                    // Every buffer is in use: convert a queued part rather than wait.
                    match work_rx.try_lock().ok().and_then(|rx| rx.try_recv().ok()) {
                        Some(item) => run(item),
                        None => break empty_rx.recv().expect("run holds a sender"),
                    }
                };
                let slab = Arc::new(self.inflate_slab(channel, z0, planes, bytes)?);
                // Every reference goes into a part (none stays here), so the last part done gets the buffer back.
                for (p, slab) in std::iter::repeat_n(slab, parts_per_volume).enumerate() {
                    work_tx
                        .send((slab, p))
                        .expect("the helper runs until the sender closes");
                }
            }
            drop(work_tx);
            self.finish()?;
            while let Some(item) = next() {
                run(item);
            }
            Ok(())
        })?;
        drop(parts);
        self.check_finite(&out, o)
    }

    /// Inflate source z-planes `z0..` (as many as `planes`, fewer at the end) of volume `channel` into `bytes`.
    fn inflate_slab(
        &mut self,
        channel: usize,
        z0: usize,
        planes: usize,
        mut bytes: Vec<u8>,
    ) -> Result<Slab> {
        let [nx, ny, nz] = self.shape;
        let plane_bytes = nx * ny * self.dtype.size();
        let len = planes.min(nz - z0) * plane_bytes;
        bytes
            .try_reserve_exact(len.saturating_sub(bytes.len()))
            .map_err(|_| no_memory(&self.path, len, "inflated voxels"))?;
        bytes.resize(len, 0);
        let got = fill(&mut self.stream, &mut bytes)
            .map_err(|e| stream_error(&self.path, &e, self.gzip))?;
        if got < bytes.len() {
            let total = channel * nz * plane_bytes + z0 * plane_bytes + got;
            return Err(Error::at(
                &self.path,
                format!(
                    "truncated data: the header says {} voxels (header promises {} bytes, file holds {total})",
                    self.describe(),
                    self.data_bytes
                ),
            ));
        }
        Ok(Slab { channel, z0, bytes })
    }

    /// Read to the end so gzip checks its CRC and length.
    fn finish(&mut self) -> Result<()> {
        std::io::copy(&mut self.stream, &mut std::io::sink())
            .map_err(|e| stream_error(&self.path, &e, self.gzip))?;
        Ok(())
    }

    /// Floats (or an extreme scl_slope) can give NaN/Inf: name the first such voxel.
    fn check_finite(&self, out: &ArrayViewMut4<f32>, o: &Orientation) -> Result<()> {
        let may_be_non_finite = matches!(self.dtype, DataType::Float32 | DataType::Float64)
            || scaling(&self.header).is_some();
        if !may_be_non_finite || out.iter().all(|v| v.is_finite()) {
            return Ok(());
        }
        let ((c, i, j, k), v) = out
            .indexed_iter()
            .find(|(_, v)| !v.is_finite())
            .expect("a non-finite voxel");
        let s = o.source_index([i, j, k], self.shape);
        let volume = if self.channels > 1 {
            format!(" of volume {c}")
        } else {
            String::new()
        };
        Err(Error::at(
            &self.path,
            format!(
                "voxel ({}, {}, {}){volume} holds {v}: images must hold finite numbers",
                s[0], s[1], s[2]
            ),
        ))
    }
}

/// Output parts per volume (slices of canonical axis 0), the unit of work shared between threads.
const PARTS: usize = 2;

/// Source z-planes per slab. Whole volumes when a file holds several: every output lane (canonical
/// axis 2) is then written in one go, and the helper converts one volume while the next inflates.
/// A single volume with a helper is cut in four so inflating and converting still overlap.
fn slab_planes(nz: usize, channels: usize, helper: bool) -> usize {
    if helper && channels == 1 {
        nz.div_ceil(4)
    } else {
        nz
    }
}

/// A zeroed buffer for inflated voxels, with huge pages asked for (see [`zeroed_image`]); None
/// when the allocator refuses.
fn new_buffer(len: usize) -> Option<Vec<u8>> {
    let buffer = try_zeroed::<u8>(len)?;
    #[cfg(target_os = "linux")]
    advise_huge_pages(&buffer);
    Some(buffer)
}

/// Types whose all-zero bytes are a valid value (zero).
///
/// # Safety
/// Implement only for such types.
unsafe trait ZeroBits: Copy {}
// SAFETY: all-zero bytes are 0u8 and 0.0f32.
unsafe impl ZeroBits for u8 {}
// SAFETY: as above.
unsafe impl ZeroBits for f32 {}

/// `len` zeros straight from the allocator's zeroed memory (as `vec![0; len]` does: fresh pages are
/// not touched until used), or None when the allocator refuses instead of aborting the process.
fn try_zeroed<T: ZeroBits>(len: usize) -> Option<Vec<T>> {
    let layout = std::alloc::Layout::array::<T>(len).ok()?;
    if layout.size() == 0 {
        return Some(Vec::new());
    }
    // SAFETY: the layout has a non-zero size; zeroed memory is a valid `T` (ZeroBits); the pointer
    // comes from the global allocator with exactly the layout of a Vec<T> of capacity `len`.
    unsafe {
        let ptr = std::alloc::alloc_zeroed(layout).cast::<T>();
        if ptr.is_null() {
            return None;
        }
        Some(Vec::from_raw_parts(ptr, len, len))
    }
}

/// Message for a buffer the allocator refused.
fn no_memory(path: &Path, bytes: usize, what: &str) -> Error {
    Error::at(
        path,
        format!("cannot allocate {bytes} bytes for {what}: not enough memory"),
    )
}

/// Write one element per 4 KiB page (with the zero it already holds), so the page faults happen now.
fn touch_pages<T: Default, B: AsMut<[T]>>(mut buffer: B) -> B {
    let step = (4096 / std::mem::size_of::<T>()).max(1);
    buffer
        .as_mut()
        .iter_mut()
        .step_by(step)
        .for_each(|v| *v = T::default());
    buffer
}

/// Inflated source z-planes `z0..` of one volume, in file order.
struct Slab {
    channel: usize,
    z0: usize,
    bytes: Vec<u8>,
}

/// A zeroed array for a whole image. On Linux it asks for transparent huge pages first: a fresh
/// 140 MB image otherwise costs ~35k page faults, about as much time as inflating it.
/// `path` names the file in the error when the allocator refuses.
pub(super) fn zeroed_image(
    path: &Path,
    shape: (usize, usize, usize, usize),
) -> Result<Array4<f32>> {
    let len = shape.0 * shape.1 * shape.2 * shape.3;
    let buffer =
        try_zeroed::<f32>(len).ok_or_else(|| no_memory(path, len * 4, "the image (float32)"))?;
    #[cfg(target_os = "linux")]
    advise_huge_pages(&buffer);
    Ok(Array4::from_shape_vec(shape, buffer).expect("length matches shape"))
}

#[cfg(target_os = "linux")]
fn advise_huge_pages<T>(buffer: &[T]) {
    const HUGE_PAGE: usize = 1 << 21;
    let start = buffer.as_ptr() as usize;
    let end = start + std::mem::size_of_val(buffer);
    let (from, to) = (
        (start + HUGE_PAGE - 1) & !(HUGE_PAGE - 1),
        end & !(HUGE_PAGE - 1),
    );
    if to > from {
        // SAFETY: the range lies inside `buffer`'s allocation, and MADV_HUGEPAGE is only a hint
        // that never changes the memory's contents; a refusal (no THP support) is harmless.
        unsafe { libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_HUGEPAGE) };
    }
}

/// Read until `buf` is full or the stream ends; returns the bytes read.
fn fill(stream: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match stream.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

fn stream_error(path: &Path, e: &std::io::Error, gzip: bool) -> Error {
    if gzip {
        gzip_error(path, e)
    } else {
        Error::at(path, format!("cannot read: {e}"))
    }
}

pub(super) fn gzip_error(path: &Path, e: &std::io::Error) -> Error {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => {
            Error::at(path, "truncated file: the gzip data ends early")
        }
        _ => Error::at(path, format!("corrupt gzip data ({e})")),
    }
}
