//! Reading and writing NIfTI-1 (`.nii`, `.nii.gz`) with the geometry kept.
//!
//! Reading takes the whole file into memory and inflates it in one go (flate2 with the zlib-rs
//! backend), parses the header with the `nifti` crate, then converts and reorders the voxels to
//! canonical orientation in one cache-blocked pass. Every way a file can be broken (truncated,
//! corrupt gzip, impossible dims, NaN voxels) becomes an [`Error`] naming the file.
//!
//! Writing reuses the source header (so outputs overlay the input in any viewer) with only the
//! datatype, dims and scaling changed, and is atomic (temp file in the same folder, then rename).
#![allow(clippy::needless_range_loop)] // 3x3 and 4x4 matrix arithmetic reads best indexed.
use crate::{Error, Orientation, Result};
use flate2::bufread::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use ndarray::{Array3, Array4, ArrayView3, ArrayViewMut4, Axis};
use nifti::{Endianness, NiftiHeader};
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Where a volume lies in the world: the source header and how the canonical array maps back onto it.
#[derive(Debug, Clone)]
pub struct Geometry {
    /// The source file's header (qform, sform, pixdim, units), reused when writing outputs.
    pub header: nifti::NiftiHeader,
    pub orientation: Orientation,
    /// Spatial shape of the source file, in source axis order.
    pub source_shape: [usize; 3],
}

impl Geometry {
    /// A plain geometry for arrays made in code: identity orientation, given spacing (mm), RAS affine.
    pub fn synthetic(shape: [usize; 3], spacing: [f32; 3]) -> Geometry {
        let mut header = NiftiHeader {
            datatype: DataType::Float32.code(),
            bitpix: 32,
            scl_slope: 1.0,
            xyzt_units: 2 | 8, // mm, seconds
            qform_code: 1,
            sform_code: 1,
            magic: *b"n+1\0",
            endianness: Endianness::Little,
            ..NiftiHeader::default()
        };
        header.dim = [3, 1, 1, 1, 1, 1, 1, 1];
        for i in 0..3 {
            header.dim[i + 1] = shape[i].min(i16::MAX as usize) as u16;
            header.pixdim[i + 1] = spacing[i];
        }
        header.pixdim[0] = 1.0;
        header.srow_x = [spacing[0], 0.0, 0.0, 0.0];
        header.srow_y = [0.0, spacing[1], 0.0, 0.0];
        header.srow_z = [0.0, 0.0, spacing[2], 0.0];
        Geometry {
            header,
            orientation: Orientation::IDENTITY,
            source_shape: shape,
        }
    }

    /// Voxel spacing in mm along the canonical axes.
    pub fn spacing(&self) -> [f32; 3] {
        let a = self.source_affine();
        let column_norm = |c: usize| (0..3).map(|r| a[r][c] * a[r][c]).sum::<f64>().sqrt() as f32;
        self.orientation.perm.map(column_norm)
    }

    /// Shape of canonical arrays.
    pub fn canonical_shape(&self) -> [usize; 3] {
        self.orientation.perm.map(|s| self.source_shape[s])
    }

    /// The source voxel-to-world affine (sform if set, else qform, else pixdim scaling).
    pub fn source_affine(&self) -> [[f64; 4]; 4] {
        header_affine(&self.header)
    }

    /// The voxel-to-world affine of canonical arrays: `world = canonical_affine * (i, j, k, 1)`.
    pub fn canonical_affine(&self) -> [[f64; 4]; 4] {
        // canonical index -> source index is a signed permutation plus an offset for flipped axes.
        let mut to_source = [[0.0f64; 4]; 4];
        to_source[3][3] = 1.0;
        for (i, (&s, &flip)) in self
            .orientation
            .perm
            .iter()
            .zip(&self.orientation.flip)
            .enumerate()
        {
            if flip {
                to_source[s][i] = -1.0;
                to_source[s][3] = self.source_shape[s] as f64 - 1.0;
            } else {
                to_source[s][i] = 1.0;
            }
        }
        let a = self.source_affine();
        let mut out = [[0.0f64; 4]; 4];
        for r in 0..4 {
            for c in 0..4 {
                out[r][c] = (0..4).map(|k| a[r][k] * to_source[k][c]).sum();
            }
        }
        out
    }

    /// Three-letter orientation code of the source, e.g. "LPS".
    pub fn source_code(&self) -> String {
        Orientation::source_code(&self.source_affine())
    }
}

/// A multi-channel image in canonical orientation, `(C, X, Y, Z)`.
#[derive(Debug, Clone)]
pub struct Image {
    pub data: Array4<f32>,
    pub geometry: Geometry,
    /// Datatype name of the source file (e.g. "int16"), for `brainseg info`.
    pub source_dtype: String,
}

/// Read a 3-D or 4-D NIfTI file (uint8, int16, int32, float32, float64; scl_slope/scl_inter applied)
/// into canonical `(C, X, Y, Z)` f32; a 3-D file gives C = 1. NaN/Inf voxels are an error.
pub fn read_image(path: &Path) -> Result<Image> {
    let reader = VolumeReader::open(path)?;
    let geometry = reader.geometry();
    let source_dtype = reader.dtype.name().to_string();
    let [x, y, z] = geometry.canonical_shape();
    let mut data = zeroed_image((reader.channels, x, y, z));
    reader.read_into(data.view_mut(), &geometry.orientation, true)?;
    Ok(Image {
        data,
        geometry,
        source_dtype,
    })
}

/// Read several 3-D files of one shape and orientation as the channels of one image: files are
/// read on parallel threads, straight into the shared array. `files` pairs each path with the
/// channel's name for messages.
pub(crate) fn read_channels(files: &[(&Path, &str)]) -> Result<Image> {
    let readers = files
        .iter()
        .map(|&(path, _)| VolumeReader::open(path))
        .collect::<Result<Vec<_>>>()?;
    let geometry = readers[0].geometry();
    for (reader, &(path, name)) in readers.iter().zip(files) {
        if reader.channels != 1 {
            return Err(Error::at(
                path,
                format!(
                    "the {name} file must be 3-D, it holds {} volumes",
                    reader.channels
                ),
            ));
        }
        let g = reader.geometry();
        if g.source_shape != geometry.source_shape || g.orientation != geometry.orientation {
            return Err(Error::at(
                path,
                format!(
                    "the {name} image ({} {}) does not match the {} image ({} {}) of {}",
                    shape_text(&g.source_shape),
                    g.source_code(),
                    files[0].1,
                    shape_text(&geometry.source_shape),
                    geometry.source_code(),
                    files[0].0.display()
                ),
            ));
        }
    }
    let source_dtype = readers[0].dtype.name().to_string();
    let [x, y, z] = geometry.canonical_shape();
    let mut data = zeroed_image((readers.len(), x, y, z));
    let o = &geometry.orientation;
    let outcomes: Vec<Result<()>> = std::thread::scope(|scope| {
        let workers: Vec<_> = readers
            .into_iter()
            .zip(data.axis_chunks_iter_mut(Axis(0), 1))
            .map(|(reader, channel)| scope.spawn(move || reader.read_into(channel, o, false)))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("reading does not panic"))
            .collect()
    });
    outcomes.into_iter().collect::<Result<()>>()?;
    Ok(Image {
        data,
        geometry,
        source_dtype,
    })
}

/// A zeroed array for a whole image. On Linux it asks for transparent huge pages first: a fresh
/// 140 MB image otherwise costs ~35k page faults, about as much time as inflating it.
fn zeroed_image(shape: (usize, usize, usize, usize)) -> Array4<f32> {
    let buffer = vec![0f32; shape.0 * shape.1 * shape.2 * shape.3];
    #[cfg(target_os = "linux")]
    advise_huge_pages(&buffer);
    Array4::from_shape_vec(shape, buffer).expect("length matches shape")
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

/// `240x240x155`-style text for messages.
pub(crate) fn shape_text(shape: &[usize]) -> String {
    shape
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("x")
}

/// Read a 3-D integer label file in canonical orientation, values as stored (no renumbering).
pub fn read_label(path: &Path) -> Result<(Array3<u8>, Geometry)> {
    let Image { data, geometry, .. } = read_image(path)?;
    if data.shape()[0] != 1 {
        return Err(Error::at(
            path,
            format!(
                "a label map must be 3-D, this file has {} volumes",
                data.shape()[0]
            ),
        ));
    }
    let values = data.index_axis_move(Axis(0), 0);
    let is_label = |v: &f32| v.fract() == 0.0 && (0.0..=255.0).contains(v);
    if !values.iter().all(is_label) {
        let (index, v) = values
            .indexed_iter()
            .find(|(_, v)| !is_label(v))
            .expect("a bad value");
        let s = geometry
            .orientation
            .source_index(index.into(), geometry.source_shape);
        return Err(Error::at(
            path,
            format!(
                "label value {v} at voxel ({}, {}, {}) is not a whole number in 0..=255",
                s[0], s[1], s[2]
            ),
        ));
    }
    Ok((values.mapv(|v| v as u8), geometry))
}

/// Write a canonical uint8 label map back in the source geometry and orientation (temp file + rename).
pub fn write_label(path: &Path, labels: &Array3<u8>, geometry: &Geometry) -> Result<()> {
    check_canonical_shape(path, labels.shape(), geometry)?;
    let volumes = [labels.view()];
    let data = to_file_order(&volumes, geometry, |v: u8| [v]);
    let header = output_header(geometry, DataType::Uint8, 1, (0.0, 0.0));
    write_nifti(path, &header, &data)
}

/// Write canonical `(C, X, Y, Z)` f32 maps (e.g. probabilities) as a 4-D NIfTI in the source geometry.
pub fn write_probabilities(path: &Path, maps: &Array4<f32>, geometry: &Geometry) -> Result<()> {
    check_canonical_shape(path, &maps.shape()[1..], geometry)?;
    let volumes: Vec<_> = maps.axis_iter(Axis(0)).collect();
    let data = to_file_order(&volumes, geometry, f32::to_le_bytes);
    let header = output_header(geometry, DataType::Float32, volumes.len(), (0.0, 1.0));
    write_nifti(path, &header, &data)
}

/// Write canonical `(C, X, Y, Z)` intensities in the source geometry as `dtype` ("uint8", "int16",
/// "int32"; anything else writes float32). Integer types need whole values in range.
pub fn write_image(
    path: &Path,
    image: &Array4<f32>,
    geometry: &Geometry,
    dtype: &str,
) -> Result<()> {
    check_canonical_shape(path, &image.shape()[1..], geometry)?;
    let dtype = match dtype {
        "uint8" => DataType::Uint8,
        "int16" => DataType::Int16,
        "int32" => DataType::Int32,
        _ => DataType::Float32,
    };
    if dtype != DataType::Float32 {
        let (lo, hi) = dtype.range();
        if let Some(v) = image
            .iter()
            .find(|v| v.fract() != 0.0 || !(lo..=hi).contains(&(**v as f64)))
        {
            return Err(Error::at(
                path,
                format!("value {v} cannot be stored as {}", dtype.name()),
            ));
        }
    }
    let volumes: Vec<_> = image.axis_iter(Axis(0)).collect();
    // Whole values in range convert exactly (checked above).
    let data = match dtype {
        DataType::Uint8 => to_file_order(&volumes, geometry, |v: f32| [v as u8]),
        DataType::Int16 => to_file_order(&volumes, geometry, |v: f32| (v as i16).to_le_bytes()),
        DataType::Int32 => to_file_order(&volumes, geometry, |v: f32| (v as i32).to_le_bytes()),
        _ => to_file_order(&volumes, geometry, f32::to_le_bytes),
    };
    let header = output_header(geometry, dtype, volumes.len(), (0.0, 0.0));
    write_nifti(path, &header, &data)
}

/// The header of a NIfTI file, read without reading its voxels.
pub fn read_header(path: &Path) -> Result<NiftiHeader> {
    let file =
        std::fs::File::open(path).map_err(|e| Error::at(path, format!("cannot open: {e}")))?;
    let mut file = std::io::BufReader::new(file);
    let is_gz = file
        .fill_buf()
        .map_err(|e| Error::at(path, format!("cannot read: {e}")))?
        .starts_with(&GZIP_MAGIC);
    let reader: Box<dyn Read> = if is_gz {
        Box::new(MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut head = Vec::with_capacity(348);
    reader
        .take(348)
        .read_to_end(&mut head)
        .map_err(|e| gzip_error(path, &e))?;
    parse_header(path, &head)
}

/// The datatype name of a header (e.g. "int16"), or "datatype N" for codes brainseg cannot read.
pub fn dtype_name(header: &NiftiHeader) -> String {
    match DataType::from_code(header.datatype) {
        Some(t) => t.name().to_string(),
        None => format!("datatype {}", header.datatype),
    }
}

/// Whether a header stores its values without scaling (scl_slope 0 or 1, scl_inter 0).
pub fn is_unscaled(header: &NiftiHeader) -> bool {
    scaling(header).is_none()
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Size of a NIfTI-1 header plus the 4-byte extension flag.
const HEADER_BYTES: usize = 352;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DataType {
    Uint8,
    Int8,
    Int16,
    Uint16,
    Int32,
    Uint32,
    Float32,
    Float64,
}

impl DataType {
    fn from_code(code: i16) -> Option<DataType> {
        Some(match code {
            2 => DataType::Uint8,
            256 => DataType::Int8,
            4 => DataType::Int16,
            512 => DataType::Uint16,
            8 => DataType::Int32,
            768 => DataType::Uint32,
            16 => DataType::Float32,
            64 => DataType::Float64,
            _ => return None,
        })
    }
    fn code(self) -> i16 {
        match self {
            DataType::Uint8 => 2,
            DataType::Int8 => 256,
            DataType::Int16 => 4,
            DataType::Uint16 => 512,
            DataType::Int32 => 8,
            DataType::Uint32 => 768,
            DataType::Float32 => 16,
            DataType::Float64 => 64,
        }
    }
    fn size(self) -> usize {
        match self {
            DataType::Uint8 | DataType::Int8 => 1,
            DataType::Int16 | DataType::Uint16 => 2,
            DataType::Int32 | DataType::Uint32 | DataType::Float32 => 4,
            DataType::Float64 => 8,
        }
    }
    fn name(self) -> &'static str {
        match self {
            DataType::Uint8 => "uint8",
            DataType::Int8 => "int8",
            DataType::Int16 => "int16",
            DataType::Uint16 => "uint16",
            DataType::Int32 => "int32",
            DataType::Uint32 => "uint32",
            DataType::Float32 => "float32",
            DataType::Float64 => "float64",
        }
    }
    /// Value range of the integer types brainseg writes.
    fn range(self) -> (f64, f64) {
        match self {
            DataType::Uint8 => (0.0, 255.0),
            DataType::Int16 => (i16::MIN as f64, i16::MAX as f64),
            DataType::Int32 => (i32::MIN as f64, i32::MAX as f64),
            _ => (f64::MIN, f64::MAX),
        }
    }
}

/// An opened NIfTI file whose header has been checked, positioned at its first voxel.
/// The compressed file sits in memory; voxels are inflated slab by slab while they are converted.
struct VolumeReader {
    path: PathBuf,
    header: NiftiHeader,
    dtype: DataType,
    /// Spatial shape in source order.
    shape: [usize; 3],
    channels: usize,
    stream: Box<dyn Read + Send>,
    /// Whether `stream` inflates gzip (its errors then speak of gzip).
    gzip: bool,
}

impl VolumeReader {
    fn open(path: &Path) -> Result<VolumeReader> {
        let file = std::fs::read(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::at(path, "no such file"),
            _ => Error::at(path, format!("cannot read: {e}")),
        })?;
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
        let reader = VolumeReader {
            path: path.to_path_buf(),
            header,
            dtype,
            shape,
            channels,
            stream,
            gzip,
        };
        if reader.data_bytes().is_none() {
            return Err(Error::at(
                path,
                format!(
                    "impossible dims: {} voxels do not fit in memory",
                    reader.describe()
                ),
            ));
        }
        Ok(reader)
    }

    fn geometry(&self) -> Geometry {
        Geometry {
            header: self.header.clone(),
            orientation: Orientation::from_affine(&header_affine(&self.header)),
            source_shape: self.shape,
        }
    }

    fn data_bytes(&self) -> Option<usize> {
        self.shape
            .iter()
            .try_fold(self.channels * self.dtype.size(), |n, &d| n.checked_mul(d))
    }

    fn describe(&self) -> String {
        let [x, y, z] = self.shape;
        format!("{x}x{y}x{z}x{} {}", self.channels, self.dtype.name())
    }

    /// Inflate and convert every voxel into canonical `out` `(C, X, Y, Z)` (standard layout).
    /// This thread inflates slabs of z-planes. With `helper`, a second thread converts them
    /// meanwhile (after faulting in the output while the first slab inflates), and this one joins
    /// it once all is inflated; without it (the caller already reads files in parallel) this
    /// thread converts each slab itself.
    fn read_into(
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
                let spare = new_buffer(slab_bytes);
                let _ = empty_tx.send(touch_pages(spare));
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
                        break new_buffer(slab_bytes);
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
        bytes.resize(planes.min(nz - z0) * plane_bytes, 0);
        let got = fill(&mut self.stream, &mut bytes)
            .map_err(|e| stream_error(&self.path, &e, self.gzip))?;
        if got < bytes.len() {
            let expected = self.data_bytes().expect("checked on open");
            let total = channel * nz * plane_bytes + z0 * plane_bytes + got;
            return Err(Error::at(
                &self.path,
                format!("truncated data: the header says {} voxels ({expected} bytes) but the file holds {total}", self.describe()),
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

/// A zeroed buffer for inflated voxels, with huge pages asked for (see [`zeroed_image`]).
fn new_buffer(len: usize) -> Vec<u8> {
    let buffer = vec![0u8; len];
    #[cfg(target_os = "linux")]
    advise_huge_pages(&buffer);
    buffer
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

/// Where canonical voxels lie in a source volume (in elements, file order: x fastest).
#[derive(Clone, Copy)]
struct VolumeMap {
    /// Spatial shape in source order.
    shape: [usize; 3],
    canonical: [usize; 3],
    /// Source step along each canonical axis, and the source index of canonical (0, 0, 0).
    strides: [isize; 3],
    base: isize,
    /// The canonical axes that run along source x and along source z.
    x_axis: usize,
    z_axis: usize,
    z_flipped: bool,
}

impl VolumeMap {
    fn new(shape: [usize; 3], o: &Orientation) -> VolumeMap {
        let source_strides = [1, shape[0] as isize, (shape[0] * shape[1]) as isize];
        let (mut strides, mut base) = ([0isize; 3], 0isize);
        for i in 0..3 {
            let s = o.perm[i];
            strides[i] = if o.flip[i] {
                -source_strides[s]
            } else {
                source_strides[s]
            };
            if o.flip[i] {
                base += (shape[s] as isize - 1) * source_strides[s];
            }
        }
        let axis_of = |s: usize| {
            o.perm
                .iter()
                .position(|&p| p == s)
                .expect("perm is a permutation")
        };
        let z_axis = axis_of(2);
        VolumeMap {
            shape,
            canonical: o.perm.map(|s| shape[s]),
            strides,
            base,
            x_axis: axis_of(0),
            z_axis,
            z_flipped: o.flip[z_axis],
        }
    }
}

/// What converting raw voxels needs to know about the file.
#[derive(Clone, Copy)]
struct VolumeDecoder {
    dtype: DataType,
    map: VolumeMap,
    scale: Option<(f64, f64)>,
    big: bool,
}

impl VolumeDecoder {
    /// Convert the voxels of source z-planes `z0..` (held in `bytes`) that fall in `out`, the
    /// canonical rows `first..` of one volume: decoding, scaling and reordering in one pass.
    fn convert(&self, bytes: &[u8], z0: usize, first: usize, out: &mut [f32]) {
        let m = &self.map;
        let [nx, ny, nz] = m.shape;
        let [_, n1, n2] = m.canonical;
        let planes = bytes.len() / (nx * ny * self.dtype.size());
        let mut ranges = [first..first + out.len() / (n1 * n2), 0..n1, 0..n2];
        // The slab's planes along the canonical axis that runs along source z.
        let (lo, hi) = if m.z_flipped {
            (nz - z0 - planes, nz - z0)
        } else {
            (z0, z0 + planes)
        };
        let r = &mut ranges[m.z_axis];
        *r = r.start.max(lo)..r.end.min(hi);
        if ranges.iter().any(|r| r.is_empty()) {
            return;
        }
        let offset = (z0 * nx * ny) as isize;
        macro_rules! transpose {
            ($t:ty) => {{
                const S: usize = std::mem::size_of::<$t>();
                let (le, be) = (<$t>::from_le_bytes, <$t>::from_be_bytes);
                // One instance per byte order and scaling, so the inner loop has no branches.
                match (self.big, self.scale) {
                    (false, None) => {
                        transpose::<S>(m, bytes, offset, ranges, first, out, |b| le(b) as f32)
                    }
                    (true, None) => {
                        transpose::<S>(m, bytes, offset, ranges, first, out, |b| be(b) as f32)
                    }
                    (false, Some((slope, inter))) => {
                        transpose::<S>(m, bytes, offset, ranges, first, out, |b| {
                            (le(b) as f64 * slope + inter) as f32
                        })
                    }
                    (true, Some((slope, inter))) => {
                        transpose::<S>(m, bytes, offset, ranges, first, out, |b| {
                            (be(b) as f64 * slope + inter) as f32
                        })
                    }
                }
            }};
        }
        match self.dtype {
            DataType::Uint8 => transpose!(u8),
            DataType::Int8 => transpose!(i8),
            DataType::Int16 => transpose!(i16),
            DataType::Uint16 => transpose!(u16),
            DataType::Int32 => transpose!(i32),
            DataType::Uint32 => transpose!(u32),
            DataType::Float32 => transpose!(f32),
            DataType::Float64 => transpose!(f64),
        }
    }
}

/// Blocks of the transpose: TILE adjacent output lanes by TILE lane elements.
const TILE: usize = 8;

/// `out[canonical (i0, i1, i2) - rows before first] = value(element at m.base + Σ i_k * m.strides[k] - offset)`
/// over `ranges`, elements `S` bytes each.
fn transpose<const S: usize>(
    m: &VolumeMap,
    bytes: &[u8],
    offset: isize,
    ranges: [std::ops::Range<usize>; 3],
    first: usize,
    out: &mut [f32],
    value: impl Fn([u8; S]) -> f32,
) {
    let [_, n1, n2] = m.canonical;
    let [s0, s1, s2] = m.strides;
    let [r0, r1, r2] = ranges;
    let source = |i0: usize, i1: usize| {
        m.base + i0 as isize * s0 + i1 as isize * s1 + r2.start as isize * s2 - offset
    };
    let target = |i0: usize, i1: usize| (i0 - first) * n1 * n2 + i1 * n2 + r2.start;
    if m.x_axis == 2 {
        // Output lanes run along source x: both sides are contiguous.
        for i0 in r0 {
            for i1 in r1.clone() {
                let (mut s, o) = (source(i0, i1), target(i0, i1));
                for v in &mut out[o..o + r2.len()] {
                    *v = value(bytes[s as usize * S..][..S].try_into().expect("S bytes"));
                    s += s2;
                }
            }
        }
        return;
    }
    // Source x runs across output lanes (along canonical axis 0 or 1): go by blocks of TILE
    // lanes, each block reading TILE short runs of x and writing TILE short runs of lanes.
    let sx = m.strides[m.x_axis];
    let lane_step = if m.x_axis == 0 { n1 * n2 } else { n2 };
    let mut block = [[0f32; TILE]; TILE];
    let mut lanes = |i0: usize, i1: usize, count: usize| {
        let (s, o) = (source(i0, i1), target(i0, i1));
        let lanes = Lanes {
            out_step: lane_step,
            count,
            len: r2.len(),
            step: s2,
        };
        if sx > 0 {
            lanes.convert::<S, false>(bytes, s, out, o, &value, &mut block);
        } else {
            lanes.convert::<S, true>(bytes, s + 1 - count as isize, out, o, &value, &mut block);
        }
    };
    if m.x_axis == 0 {
        // Lanes a few rows of canonical axis 1 at a time: the source lines they read (all
        // planes of those rows) stay in L2 while the next tiles of x reuse them.
        const ROWS: usize = 8;
        for b in r1.clone().step_by(ROWS) {
            for t in r0.clone().step_by(TILE) {
                (b..(b + ROWS).min(r1.end)).for_each(|i1| lanes(t, i1, TILE.min(r0.end - t)));
            }
        }
    } else {
        for i0 in r0 {
            r1.clone()
                .step_by(TILE)
                .for_each(|t| lanes(i0, t, TILE.min(r1.end - t)));
        }
    }
}

/// `count` (at most TILE) output lanes of `len` elements, `out_step` apart in the output; element
/// k of lane j is the source element `low + k * step + j` (`REV`: `+ count - 1 - j`).
struct Lanes {
    out_step: usize,
    count: usize,
    len: usize,
    step: isize,
}

impl Lanes {
    #[inline(always)]
    fn convert<const S: usize, const REV: bool>(
        &self,
        bytes: &[u8],
        low: isize,
        out: &mut [f32],
        o: usize,
        value: &impl Fn([u8; S]) -> f32,
        block: &mut [[f32; TILE]; TILE],
    ) {
        let count = self.count;
        for k0 in (0..self.len).step_by(TILE) {
            let width = TILE.min(self.len - k0);
            for (k, row) in block[..width].iter_mut().enumerate() {
                let at = (low + (k0 + k) as isize * self.step) as usize * S;
                if count == TILE {
                    // Fixed sizes, so the compiler converts the run with vector code.
                    let mut run = [[0u8; S]; TILE];
                    run.as_flattened_mut()
                        .copy_from_slice(&bytes[at..][..TILE * S]);
                    for (j, v) in row.iter_mut().enumerate() {
                        *v = value(run[if REV { TILE - 1 - j } else { j }]);
                    }
                } else {
                    for (j, b) in bytes[at..][..count * S].chunks_exact(S).enumerate() {
                        row[if REV { count - 1 - j } else { j }] =
                            value(b.try_into().expect("S bytes"));
                    }
                }
            }
            for j in 0..count {
                let o = o + j * self.out_step + k0;
                for (v, row) in out[o..o + width].iter_mut().zip(block.iter()) {
                    *v = row[j];
                }
            }
        }
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

/// `(slope, inter)` when the header asks for scaling; NIfTI says slope 0 means none.
fn scaling(header: &NiftiHeader) -> Option<(f64, f64)> {
    let slope = header.scl_slope as f64;
    let inter = if header.scl_inter.is_finite() {
        header.scl_inter as f64
    } else {
        0.0
    };
    if slope == 0.0 || !slope.is_finite() || (slope == 1.0 && inter == 0.0) {
        None
    } else {
        Some((slope, inter))
    }
}

/// A 3-D destination inside a flat slice: element `(i0, i1, i2)` is `data[base + Σ i_k * strides[k]]`.
struct Strided<'a, O> {
    data: &'a mut [O],
    strides: [usize; 3],
    base: usize,
}

/// `out(i0, i1, i2) = get(base + Σ i_k * strides[k])` over `shape`. Blocked in tiles so both the
/// reads and the writes stay in cache (and in the TLB) whatever the permutation.
fn gather<O>(
    out: Strided<'_, O>,
    shape: [usize; 3],
    strides: [isize; 3],
    base: isize,
    get: impl Fn(usize) -> O,
) {
    const T01: usize = 16;
    const T2: usize = 32;
    let [n0, n1, n2] = shape;
    let Strided {
        data,
        strides: out_strides,
        base: out_base,
    } = out;
    for b0 in (0..n0).step_by(T01) {
        for b1 in (0..n1).step_by(T01) {
            for b2 in (0..n2).step_by(T2) {
                let e2 = (b2 + T2).min(n2);
                for i0 in b0..(b0 + T01).min(n0) {
                    for i1 in b1..(b1 + T01).min(n1) {
                        let mut o = out_base
                            + i0 * out_strides[0]
                            + i1 * out_strides[1]
                            + b2 * out_strides[2];
                        let mut s = base
                            + i0 as isize * strides[0]
                            + i1 as isize * strides[1]
                            + b2 as isize * strides[2];
                        for _ in b2..e2 {
                            data[o] = get(s as usize);
                            o += out_strides[2];
                            s += strides[2];
                        }
                    }
                }
            }
        }
    }
}

fn stream_error(path: &Path, e: &std::io::Error, gzip: bool) -> Error {
    if gzip {
        gzip_error(path, e)
    } else {
        Error::at(path, format!("cannot read: {e}"))
    }
}

fn gzip_error(path: &Path, e: &std::io::Error) -> Error {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => {
            Error::at(path, "truncated file: the gzip data ends early")
        }
        _ => Error::at(path, format!("corrupt gzip data ({e})")),
    }
}

fn parse_header(path: &Path, bytes: &[u8]) -> Result<NiftiHeader> {
    if bytes.len() < 348 {
        return Err(Error::at(
            path,
            format!(
                "truncated file: {} bytes, shorter than a NIfTI-1 header (348)",
                bytes.len()
            ),
        ));
    }
    // Check the byte order and dim[0] here: the nifti crate guesses the byte order from dim[0] alone.
    let sizeof_hdr = i32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"));
    let big = match sizeof_hdr {
        348 => false,
        n if n.swap_bytes() == 348 => true,
        540 => {
            return Err(Error::at(
                path,
                "NIfTI-2 files are not supported; save it as NIfTI-1",
            ))
        }
        n => {
            return Err(Error::at(
                path,
                format!("not a NIfTI-1 file (sizeof_hdr is {n}, expected 348)"),
            ))
        }
    };
    let dim0 = [bytes[40], bytes[41]];
    let dim0 = if big {
        i16::from_be_bytes(dim0)
    } else {
        i16::from_le_bytes(dim0)
    };
    if !(1..=7).contains(&dim0) {
        return Err(Error::at(
            path,
            format!("impossible dims: dim[0] = {dim0} (must be 1..=7)"),
        ));
    }
    let header = NiftiHeader::from_reader(&bytes[..348])
        .map_err(|e| Error::at(path, format!("unreadable NIfTI header ({e})")))?;
    match &header.magic {
        b"n+1\0" => Ok(header),
        b"ni1\0" => Err(Error::at(
            path,
            "a .hdr/.img pair is not supported; save it as a single .nii or .nii.gz",
        )),
        _ => Err(Error::at(
            path,
            "not a NIfTI-1 file (bad magic code; Analyze 7.5 is not supported)",
        )),
    }
}

/// Spatial shape and number of volumes; dims 5..7 must be 1.
fn volume_dims(path: &Path, header: &NiftiHeader) -> Result<([usize; 3], usize)> {
    // NIfTI stores dims as signed 16-bit; the nifti crate reads them unsigned.
    let dim = header.dim.map(|d| d as i16);
    let ndim = dim[0];
    if !(1..=7).contains(&ndim) {
        return Err(Error::at(
            path,
            format!("impossible dims: dim[0] = {ndim} (must be 1..=7)"),
        ));
    }
    for (k, &d) in dim.iter().enumerate().take(ndim as usize + 1).skip(1) {
        if d <= 0 {
            return Err(Error::at(
                path,
                format!("impossible dims: dim[{k}] = {d} (must be positive)"),
            ));
        }
    }
    let d = |k: usize| {
        if k <= ndim as usize {
            dim[k] as usize
        } else {
            1
        }
    };
    if ndim < 3 {
        return Err(Error::at(
            path,
            format!("a {ndim}-D image: brainseg needs 3-D or 4-D volumes"),
        ));
    }
    if (5..=7).any(|k| d(k) != 1) {
        return Err(Error::at(
            path,
            format!("a {ndim}-D image: brainseg needs 3-D or 4-D volumes"),
        ));
    }
    Ok(([d(1), d(2), d(3)], d(4)))
}

/// The voxel-to-world affine a header defines (NIfTI-1 methods 3, 2 and 1, in that order).
fn header_affine(h: &NiftiHeader) -> [[f64; 4]; 4] {
    let mut a = [[0.0f64; 4]; 4];
    a[3][3] = 1.0;
    if h.sform_code > 0 {
        for (row, srow) in [h.srow_x, h.srow_y, h.srow_z].iter().enumerate() {
            a[row] = srow.map(|v| v as f64);
        }
    } else if h.qform_code > 0 {
        let (b, c, d) = (h.quatern_b as f64, h.quatern_c as f64, h.quatern_d as f64);
        let a0 = (1.0 - (b * b + c * c + d * d)).max(0.0).sqrt();
        let r = [
            [
                a0 * a0 + b * b - c * c - d * d,
                2.0 * (b * c - a0 * d),
                2.0 * (b * d + a0 * c),
            ],
            [
                2.0 * (b * c + a0 * d),
                a0 * a0 + c * c - b * b - d * d,
                2.0 * (c * d - a0 * b),
            ],
            [
                2.0 * (b * d - a0 * c),
                2.0 * (c * d + a0 * b),
                a0 * a0 + d * d - c * c - b * b,
            ],
        ];
        let qfac = if h.pixdim[0] < 0.0 { -1.0 } else { 1.0 };
        let zoom = [
            h.pixdim[1] as f64,
            h.pixdim[2] as f64,
            qfac * h.pixdim[3] as f64,
        ];
        for row in 0..3 {
            for col in 0..3 {
                a[row][col] = r[row][col] * zoom[col];
            }
        }
        a[0][3] = h.quatern_x as f64;
        a[1][3] = h.quatern_y as f64;
        a[2][3] = h.quatern_z as f64;
    } else {
        for i in 0..3 {
            let z = h.pixdim[i + 1].abs() as f64;
            a[i][i] = if z > 0.0 { z } else { 1.0 };
        }
    }
    a
}

fn check_canonical_shape(path: &Path, shape: &[usize], geometry: &Geometry) -> Result<()> {
    let expected = geometry.canonical_shape();
    if shape != expected {
        return Err(Error::at(
            path,
            format!(
                "cannot write a {shape:?} array with a geometry of canonical shape {expected:?}"
            ),
        ));
    }
    Ok(())
}

/// Canonical volumes -> little-endian bytes in the source file's voxel order (Fortran, source axes).
fn to_file_order<T: Copy, const S: usize>(
    volumes: &[ArrayView3<T>],
    geometry: &Geometry,
    encode: impl Fn(T) -> [u8; S],
) -> Vec<u8> {
    let o = geometry.orientation;
    let shape = geometry.source_shape;
    let n: usize = shape.iter().product();
    let mut out = vec![0u8; n * volumes.len() * S];
    let canonical = geometry.canonical_shape();
    let canonical_strides = [
        (canonical[1] * canonical[2]) as isize,
        canonical[2] as isize,
        1,
    ];
    let inverse = {
        let mut q = [0; 3];
        for (i, &s) in o.perm.iter().enumerate() {
            q[s] = i;
        }
        q
    };
    // File order is C order over (z, y, x) of the source; find each source axis in the canonical array.
    let mut strides = [0isize; 3];
    let mut base = 0isize;
    for (k, s) in [2usize, 1, 0].into_iter().enumerate() {
        let i = inverse[s];
        strides[k] = if o.flip[i] {
            -canonical_strides[i]
        } else {
            canonical_strides[i]
        };
        if o.flip[i] {
            base += (canonical[i] as isize - 1) * canonical_strides[i];
        }
    }
    let mut encoded = vec![[0u8; S]; n];
    for (volume, bytes) in volumes.iter().zip(out.chunks_mut(n * S)) {
        let standard = volume.as_standard_layout();
        let values = standard.as_slice().expect("standard layout");
        let target = Strided {
            data: &mut encoded,
            strides: [shape[1] * shape[0], shape[0], 1],
            base: 0,
        };
        gather(target, [shape[2], shape[1], shape[0]], strides, base, |i| {
            encode(values[i])
        });
        bytes.copy_from_slice(encoded.as_flattened());
    }
    out
}

/// The source header with the datatype, dims and scaling of what is written now.
fn output_header(
    geometry: &Geometry,
    dtype: DataType,
    volumes: usize,
    cal: (f32, f32),
) -> NiftiHeader {
    let mut h = geometry.header.clone();
    let [x, y, z] = geometry.source_shape;
    let four_d = volumes > 1;
    h.dim = [
        if four_d { 4 } else { 3 },
        x as u16,
        y as u16,
        z as u16,
        volumes as u16,
        1,
        1,
        1,
    ];
    if four_d && h.pixdim[4] <= 0.0 {
        h.pixdim[4] = 1.0;
    }
    h.datatype = dtype.code();
    h.bitpix = (dtype.size() * 8) as i16;
    h.scl_slope = 1.0;
    h.scl_inter = 0.0;
    (h.cal_min, h.cal_max) = cal;
    h.glmin = 0;
    h.glmax = 0;
    h.intent_code = 0;
    h.vox_offset = HEADER_BYTES as f32;
    h.sizeof_hdr = 348;
    h.magic = *b"n+1\0";
    h.endianness = Endianness::Little;
    h.descrip.resize(80, 0);
    h
}

/// Serialise a NIfTI-1 header (little-endian) followed by an empty extension flag.
fn encode_header(h: &NiftiHeader) -> Vec<u8> {
    let mut b = Vec::with_capacity(HEADER_BYTES);
    b.extend_from_slice(&h.sizeof_hdr.to_le_bytes());
    b.extend_from_slice(&h.data_type);
    b.extend_from_slice(&h.db_name);
    b.extend_from_slice(&h.extents.to_le_bytes());
    b.extend_from_slice(&h.session_error.to_le_bytes());
    b.push(h.regular);
    b.push(h.dim_info);
    h.dim
        .iter()
        .for_each(|d| b.extend_from_slice(&d.to_le_bytes()));
    for f in [h.intent_p1, h.intent_p2, h.intent_p3] {
        b.extend_from_slice(&f.to_le_bytes());
    }
    for s in [h.intent_code, h.datatype, h.bitpix, h.slice_start] {
        b.extend_from_slice(&s.to_le_bytes());
    }
    h.pixdim
        .iter()
        .for_each(|f| b.extend_from_slice(&f.to_le_bytes()));
    for f in [h.vox_offset, h.scl_slope, h.scl_inter] {
        b.extend_from_slice(&f.to_le_bytes());
    }
    b.extend_from_slice(&h.slice_end.to_le_bytes());
    b.push(h.slice_code);
    b.push(h.xyzt_units);
    for f in [h.cal_max, h.cal_min, h.slice_duration, h.toffset] {
        b.extend_from_slice(&f.to_le_bytes());
    }
    b.extend_from_slice(&h.glmax.to_le_bytes());
    b.extend_from_slice(&h.glmin.to_le_bytes());
    b.extend_from_slice(&h.descrip[..80]);
    b.extend_from_slice(&h.aux_file);
    b.extend_from_slice(&h.qform_code.to_le_bytes());
    b.extend_from_slice(&h.sform_code.to_le_bytes());
    for f in [
        h.quatern_b,
        h.quatern_c,
        h.quatern_d,
        h.quatern_x,
        h.quatern_y,
        h.quatern_z,
    ] {
        b.extend_from_slice(&f.to_le_bytes());
    }
    for f in h.srow_x.iter().chain(&h.srow_y).chain(&h.srow_z) {
        b.extend_from_slice(&f.to_le_bytes());
    }
    b.extend_from_slice(&h.intent_name);
    b.extend_from_slice(&h.magic);
    b.extend_from_slice(&[0; 4]); // no extensions
    debug_assert_eq!(b.len(), HEADER_BYTES);
    b
}

/// Write header + data as `.nii` or `.nii.gz` (by the name), atomically.
fn write_nifti(path: &Path, header: &NiftiHeader, data: &[u8]) -> Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let gz = if name.ends_with(".nii.gz") {
        true
    } else if name.ends_with(".nii") {
        false
    } else {
        return Err(Error::at(path, "output name must end with .nii or .nii.gz"));
    };
    let head = encode_header(header);
    crate::atomic::write_atomic_with(path, |file| {
        if gz {
            // Level 1, as nibabel: far faster than the default for a small size cost.
            let mut encoder = GzEncoder::new(std::io::BufWriter::new(file), Compression::fast());
            encoder.write_all(&head)?;
            encoder.write_all(data)?;
            encoder.finish()?.flush()
        } else {
            let mut writer = std::io::BufWriter::new(file);
            writer.write_all(&head)?;
            writer.write_all(data)?;
            writer.flush()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every signed permutation of the axes.
    fn orientations() -> Vec<Orientation> {
        let perms = [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ];
        let flips = (0..8).map(|f| [f & 1 != 0, f & 2 != 0, f & 4 != 0]);
        perms
            .into_iter()
            .flat_map(|perm| flips.clone().map(move |flip| Orientation { perm, flip }))
            .collect()
    }

    /// Write `channels` volumes of `shape` in orientation `o` (each voxel a distinct value derived
    /// from its file index) and return the canonical array a correct reader gives.
    fn write_case(
        path: &Path,
        shape: [usize; 3],
        channels: usize,
        o: Orientation,
        dtype: DataType,
        scale: (f32, f32),
    ) -> Array4<f32> {
        let mut geometry = Geometry::synthetic(shape, [1.0; 3]);
        let mut rows = [[0f32; 4]; 3];
        for w in 0..3 {
            rows[w][o.perm[w]] = if o.flip[w] { -1.0 } else { 1.0 };
        }
        (
            geometry.header.srow_x,
            geometry.header.srow_y,
            geometry.header.srow_z,
        ) = (rows[0], rows[1], rows[2]);
        let mut header = output_header(&geometry, dtype, channels, (0.0, 0.0));
        (header.scl_slope, header.scl_inter) = scale;
        geometry.orientation = o;
        let n: usize = shape.iter().product();
        let raw = |i: usize| -> f64 {
            let v = (i * 7919 % 2003) as f64 - 1001.0;
            if dtype == DataType::Uint8 {
                v.abs() % 256.0
            } else {
                v
            }
        };
        let mut data = Vec::new();
        for i in 0..n * channels {
            let v = raw(i);
            match dtype {
                DataType::Uint8 => data.push(v as u8),
                DataType::Int16 => data.extend((v as i16).to_le_bytes()),
                DataType::Int32 => data.extend((v as i32).to_le_bytes()),
                DataType::Float32 => data.extend((v as f32 * 0.5).to_le_bytes()),
                DataType::Float64 => data.extend((v * 0.25).to_le_bytes()),
                _ => unreachable!("not written by this test"),
            }
        }
        write_nifti(path, &header, &data).unwrap();
        let [x, y, z] = geometry.canonical_shape();
        let (slope, inter) = (scale.0 as f64, scale.1 as f64);
        Array4::from_shape_fn((channels, x, y, z), |(c, i, j, k)| {
            let s = o.source_index([i, j, k], shape);
            let v = raw(c * n + s[0] + shape[0] * (s[1] + shape[1] * s[2]));
            let v = match dtype {
                DataType::Float32 => (v as f32 * 0.5) as f64,
                DataType::Float64 => v * 0.25,
                _ => v,
            };
            if slope != 0.0 && !(slope == 1.0 && inter == 0.0) {
                (v * slope + inter) as f32
            } else {
                v as f32
            }
        })
    }

    #[test]
    fn every_orientation_reads_in_canonical_order() {
        let folder = tempfile::tempdir().unwrap();
        for (n, o) in orientations().into_iter().enumerate() {
            for (shape, channels) in [
                ([5, 7, 9], 1),
                ([5, 7, 9], 3),
                ([37, 20, 11], 2),
                ([3, 40, 6], 1),
            ] {
                let path = folder
                    .path()
                    .join(if n % 2 == 0 { "a.nii.gz" } else { "a.nii" });
                let expected = write_case(&path, shape, channels, o, DataType::Int16, (1.0, 0.0));
                let image = read_image(&path).unwrap();
                assert_eq!(image.geometry.orientation, o);
                assert_eq!(image.data, expected, "{o:?} {shape:?}x{channels}");
            }
        }
    }

    #[test]
    fn every_datatype_and_scaling_reads_exactly() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("a.nii.gz");
        let o = Orientation {
            perm: [1, 2, 0],
            flip: [true, false, true],
        };
        for dtype in [
            DataType::Uint8,
            DataType::Int16,
            DataType::Int32,
            DataType::Float32,
            DataType::Float64,
        ] {
            for scale in [(1.0, 0.0), (0.0, 3.0), (0.5, -2.0)] {
                for channels in [1, 4] {
                    let expected = write_case(&path, [9, 6, 17], channels, o, dtype, scale);
                    assert_eq!(
                        read_image(&path).unwrap().data,
                        expected,
                        "{dtype:?} {scale:?} x{channels}"
                    );
                }
            }
        }
    }

    /// Small files, read many times, so the threads meet in every order.
    #[test]
    fn repeated_reads_give_the_same_image() {
        let folder = tempfile::tempdir().unwrap();
        let o = Orientation {
            perm: [0, 1, 2],
            flip: [true, true, false],
        };
        for (shape, channels) in [([6, 5, 3], 1), ([6, 5, 9], 1), ([20, 9, 4], 4)] {
            let path = folder.path().join("a.nii.gz");
            let expected = write_case(&path, shape, channels, o, DataType::Uint8, (1.0, 0.0));
            for _ in 0..200 {
                assert_eq!(read_image(&path).unwrap().data, expected);
            }
        }
    }

    #[test]
    fn separate_files_read_as_channels() {
        let folder = tempfile::tempdir().unwrap();
        for o in orientations() {
            let paths = [folder.path().join("a.nii.gz"), folder.path().join("b.nii")];
            let a = write_case(&paths[0], [33, 4, 10], 1, o, DataType::Int16, (1.0, 0.0));
            let b = write_case(&paths[1], [33, 4, 10], 1, o, DataType::Float32, (2.0, 1.0));
            let image = read_channels(&[(&paths[0], "a"), (&paths[1], "b")]).unwrap();
            assert_eq!(
                image.data,
                ndarray::concatenate(Axis(0), &[a.view(), b.view()]).unwrap(),
                "{o:?}"
            );
        }
    }
}
