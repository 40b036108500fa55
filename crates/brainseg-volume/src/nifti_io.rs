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
use ndarray::{Array3, Array4, ArrayView3, ArrayViewMut3, ArrayViewMut4, Axis};
use nifti::{Endianness, NiftiHeader};
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};

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
        Geometry { header, orientation: Orientation::IDENTITY, source_shape: shape }
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
        for (i, (&s, &flip)) in self.orientation.perm.iter().zip(&self.orientation.flip).enumerate() {
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
    reader.read_into(data.view_mut(), &geometry.orientation)?;
    Ok(Image { data, geometry, source_dtype })
}

/// Read several 3-D files of one shape and orientation as the channels of one image: files are
/// read on parallel threads, straight into the shared array. `files` pairs each path with the
/// channel's name for messages.
pub(crate) fn read_channels(files: &[(&Path, &str)]) -> Result<Image> {
    let readers = files.iter().map(|&(path, _)| VolumeReader::open(path)).collect::<Result<Vec<_>>>()?;
    let geometry = readers[0].geometry();
    for (reader, &(path, name)) in readers.iter().zip(files) {
        if reader.channels != 1 {
            return Err(Error::at(path, format!("the {name} file must be 3-D, it holds {} volumes", reader.channels)));
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
            .map(|(reader, channel)| scope.spawn(move || reader.read_into(channel, o)))
            .collect();
        workers.into_iter().map(|w| w.join().expect("reading does not panic")).collect()
    });
    outcomes.into_iter().collect::<Result<()>>()?;
    Ok(Image { data, geometry, source_dtype })
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
fn advise_huge_pages(buffer: &[f32]) {
    const HUGE_PAGE: usize = 1 << 21;
    let start = buffer.as_ptr() as usize;
    let end = start + std::mem::size_of_val(buffer);
    let (from, to) = ((start + HUGE_PAGE - 1) & !(HUGE_PAGE - 1), end & !(HUGE_PAGE - 1));
    if to > from {
        // SAFETY: the range lies inside `buffer`'s allocation, and MADV_HUGEPAGE is only a hint
        // that never changes the memory's contents; a refusal (no THP support) is harmless.
        unsafe { libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_HUGEPAGE) };
    }
}

/// `240x240x155`-style text for messages.
pub(crate) fn shape_text(shape: &[usize]) -> String {
    shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x")
}

/// Read a 3-D integer label file in canonical orientation, values as stored (no renumbering).
pub fn read_label(path: &Path) -> Result<(Array3<u8>, Geometry)> {
    let Image { data, geometry, .. } = read_image(path)?;
    if data.shape()[0] != 1 {
        return Err(Error::at(path, format!("a label map must be 3-D, this file has {} volumes", data.shape()[0])));
    }
    let values = data.index_axis_move(Axis(0), 0);
    let is_label = |v: &f32| v.fract() == 0.0 && (0.0..=255.0).contains(v);
    if !values.iter().all(is_label) {
        let (index, v) = values.indexed_iter().find(|(_, v)| !is_label(v)).expect("a bad value");
        let s = geometry.orientation.source_index(index.into(), geometry.source_shape);
        return Err(Error::at(
            path,
            format!("label value {v} at voxel ({}, {}, {}) is not a whole number in 0..=255", s[0], s[1], s[2]),
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
pub fn write_image(path: &Path, image: &Array4<f32>, geometry: &Geometry, dtype: &str) -> Result<()> {
    check_canonical_shape(path, &image.shape()[1..], geometry)?;
    let dtype = match dtype {
        "uint8" => DataType::Uint8,
        "int16" => DataType::Int16,
        "int32" => DataType::Int32,
        _ => DataType::Float32,
    };
    if dtype != DataType::Float32 {
        let (lo, hi) = dtype.range();
        if let Some(v) = image.iter().find(|v| v.fract() != 0.0 || !(lo..=hi).contains(&(**v as f64))) {
            return Err(Error::at(path, format!("value {v} cannot be stored as {}", dtype.name())));
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
    let file = std::fs::File::open(path).map_err(|e| Error::at(path, format!("cannot open: {e}")))?;
    let mut file = std::io::BufReader::new(file);
    let is_gz = file.fill_buf().map_err(|e| Error::at(path, format!("cannot read: {e}")))?.starts_with(&GZIP_MAGIC);
    let reader: Box<dyn Read> = if is_gz { Box::new(MultiGzDecoder::new(file)) } else { Box::new(file) };
    let mut head = Vec::with_capacity(348);
    reader.take(348).read_to_end(&mut head).map_err(|e| gzip_error(path, &e))?;
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
/// The compressed file sits in memory; voxels are inflated block by block while they are converted.
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

/// Bytes of voxels inflated per block: a few z-planes, small enough to stay in cache.
const BLOCK_BYTES: usize = 1 << 21;

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
            return Err(Error::at(path, format!("impossible vox_offset {} (must be at least 352)", header.vox_offset)));
        }
        // Skip extensions up to the first voxel.
        let skip = header.vox_offset as usize - got;
        let skipped = std::io::copy(&mut (&mut stream).take(skip as u64), &mut std::io::sink())
            .map_err(|e| stream_error(path, &e, gzip))?;
        if got < HEADER_BYTES || skipped < skip as u64 {
            return Err(Error::at(path, format!("truncated file: it ends before the first voxel (offset {})", header.vox_offset)));
        }
        let reader = VolumeReader { path: path.to_path_buf(), header, dtype, shape, channels, stream, gzip };
        if reader.data_bytes().is_none() {
            return Err(Error::at(path, format!("impossible dims: {} voxels do not fit in memory", reader.describe())));
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
        self.shape.iter().try_fold(self.channels * self.dtype.size(), |n, &d| n.checked_mul(d))
    }

    fn describe(&self) -> String {
        let [x, y, z] = self.shape;
        format!("{x}x{y}x{z}x{} {}", self.channels, self.dtype.name())
    }

    /// Inflate and convert every voxel into canonical `out` `(C, X, Y, Z)` (standard layout).
    /// This thread inflates blocks of z-planes while one or two others convert them (channels
    /// alternate between converters), so inflating and converting overlap.
    fn read_into(mut self, mut out: ArrayViewMut4<f32>, o: &Orientation) -> Result<()> {
        let [nx, ny, nz] = self.shape;
        let plane_bytes = nx * ny * self.dtype.size();
        let planes = (BLOCK_BYTES / plane_bytes).clamp(1, nz);
        let expected = self.data_bytes().expect("checked on open");
        let decoder = BlockDecoder {
            dtype: self.dtype,
            shape: self.shape,
            scale: scaling(&self.header),
            big: self.header.endianness == Endianness::Big,
        };
        let converters = self.channels.clamp(1, 2);
        let mut owned: Vec<Vec<(usize, ArrayViewMut3<f32>)>> = (0..converters).map(|_| Vec::new()).collect();
        for (c, view) in out.axis_iter_mut(Axis(0)).enumerate() {
            owned[c % converters].push((c, view));
        }
        std::thread::scope(|scope| {
            let (empty_tx, empty_rx) = std::sync::mpsc::channel::<Vec<u8>>();
            let mut senders = Vec::with_capacity(converters);
            for mut views in owned {
                let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<(usize, usize, Vec<u8>)>(2);
                senders.push(full_tx);
                let empty_tx = empty_tx.clone();
                scope.spawn(move || {
                    let mut values = Vec::new();
                    for (c, z0, block) in full_rx {
                        let (_, view) = views.iter_mut().find(|(k, _)| *k == c).expect("a channel of this converter");
                        decoder.convert(&block, z0, view.as_slice_mut().expect("standard layout"), o, &mut values);
                        // Returning the buffer for reuse fails only once inflating is over.
                        let _ = empty_tx.send(block);
                    }
                });
            }
            for c in 0..self.channels {
                for z0 in (0..nz).step_by(planes) {
                    let mut block = empty_rx.try_recv().unwrap_or_default();
                    block.resize(planes.min(nz - z0) * plane_bytes, 0);
                    let got = fill(&mut self.stream, &mut block).map_err(|e| stream_error(&self.path, &e, self.gzip))?;
                    if got < block.len() {
                        let total = c * nx * ny * nz * self.dtype.size() + z0 * plane_bytes + got;
                        return Err(Error::at(
                            &self.path,
                            format!(
                                "truncated data: the header says {} voxels ({expected} bytes) but the file holds {total}",
                                self.describe()
                            ),
                        ));
                    }
                    senders[c % converters].send((c, z0, block)).expect("converters run until the senders close");
                }
            }
            // Read to the end so gzip checks its CRC and length.
            std::io::copy(&mut self.stream, &mut std::io::sink()).map_err(|e| stream_error(&self.path, &e, self.gzip))?;
            Ok(())
        })?;
        self.check_finite(&out, o)
    }

    /// Floats (or an extreme scl_slope) can give NaN/Inf: name the first such voxel.
    fn check_finite(&self, out: &ArrayViewMut4<f32>, o: &Orientation) -> Result<()> {
        let may_be_non_finite = matches!(self.dtype, DataType::Float32 | DataType::Float64) || scaling(&self.header).is_some();
        if !may_be_non_finite || out.iter().all(|v| v.is_finite()) {
            return Ok(());
        }
        let ((c, i, j, k), v) = out.indexed_iter().find(|(_, v)| !v.is_finite()).expect("a non-finite voxel");
        let s = o.source_index([i, j, k], self.shape);
        let volume = if self.channels > 1 { format!(" of volume {c}") } else { String::new() };
        Err(Error::at(
            &self.path,
            format!("voxel ({}, {}, {}){volume} holds {v}: images must hold finite numbers", s[0], s[1], s[2]),
        ))
    }
}

/// What converting a block of raw voxels needs to know about the file.
#[derive(Clone, Copy)]
struct BlockDecoder {
    dtype: DataType,
    /// Spatial shape in source order.
    shape: [usize; 3],
    scale: Option<(f64, f64)>,
    big: bool,
}

impl BlockDecoder {
    /// Convert source z-planes `z0..` held in `block` into their place in one canonical channel;
    /// `values` is scratch space reused between blocks.
    fn convert(&self, block: &[u8], z0: usize, out: &mut [f32], o: &Orientation, values: &mut Vec<f32>) {
        let [nx, ny, nz] = self.shape;
        let planes = block.len() / (nx * ny * self.dtype.size());
        // Within the block, source voxel (x, y, z0 + dz) is element x + X*y + X*Y*dz (Fortran order).
        let block_shape = [nx, ny, planes];
        let source_strides = [1, nx as isize, (nx * ny) as isize];
        let canonical = o.perm.map(|s| self.shape[s]);
        let canonical_strides = [canonical[1] * canonical[2], canonical[2], 1];
        let (mut shape, mut strides, mut base, mut out_base) = ([0; 3], [0isize; 3], 0isize, 0usize);
        for i in 0..3 {
            let s = o.perm[i];
            shape[i] = block_shape[s];
            strides[i] = if o.flip[i] { -source_strides[s] } else { source_strides[s] };
            if o.flip[i] {
                base += (block_shape[s] as isize - 1) * source_strides[s];
            }
            if s == 2 {
                // The canonical axis that runs along source z: this block's slab of it.
                let start = if o.flip[i] { nz - z0 - planes } else { z0 };
                out_base = start * canonical_strides[i];
            }
        }
        // Decode the block in source order first (a straight, vectorisable pass), then reorder floats.
        let (scale, big) = (self.scale, self.big);
        values.clear();
        macro_rules! decode {
            ($t:ty) => {{
                const S: usize = std::mem::size_of::<$t>();
                let read = |b: &[u8]| -> $t {
                    let b: [u8; S] = b.try_into().expect("S bytes");
                    if big { <$t>::from_be_bytes(b) } else { <$t>::from_le_bytes(b) }
                };
                let raw = block.chunks_exact(S).map(read);
                match scale {
                    None => values.extend(raw.map(|v| v as f32)),
                    Some((slope, inter)) => values.extend(raw.map(|v| (v as f64 * slope + inter) as f32)),
                }
            }};
        }
        match self.dtype {
            DataType::Uint8 => decode!(u8),
            DataType::Int8 => decode!(i8),
            DataType::Int16 => decode!(i16),
            DataType::Uint16 => decode!(u16),
            DataType::Int32 => decode!(i32),
            DataType::Uint32 => decode!(u32),
            DataType::Float32 => decode!(f32),
            DataType::Float64 => decode!(f64),
        }
        let target = Strided { data: out, strides: canonical_strides, base: out_base };
        gather(target, shape, strides, base, |i| values[i]);
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
    let inter = if header.scl_inter.is_finite() { header.scl_inter as f64 } else { 0.0 };
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
fn gather<O>(out: Strided<'_, O>, shape: [usize; 3], strides: [isize; 3], base: isize, get: impl Fn(usize) -> O) {
    const T01: usize = 16;
    const T2: usize = 32;
    let [n0, n1, n2] = shape;
    let Strided { data, strides: out_strides, base: out_base } = out;
    for b0 in (0..n0).step_by(T01) {
        for b1 in (0..n1).step_by(T01) {
            for b2 in (0..n2).step_by(T2) {
                let e2 = (b2 + T2).min(n2);
                for i0 in b0..(b0 + T01).min(n0) {
                    for i1 in b1..(b1 + T01).min(n1) {
                        let mut o = out_base + i0 * out_strides[0] + i1 * out_strides[1] + b2 * out_strides[2];
                        let mut s = base + i0 as isize * strides[0] + i1 as isize * strides[1] + b2 as isize * strides[2];
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
        std::io::ErrorKind::UnexpectedEof => Error::at(path, "truncated file: the gzip data ends early"),
        _ => Error::at(path, format!("corrupt gzip data ({e})")),
    }
}

fn parse_header(path: &Path, bytes: &[u8]) -> Result<NiftiHeader> {
    if bytes.len() < 348 {
        return Err(Error::at(path, format!("truncated file: {} bytes, shorter than a NIfTI-1 header (348)", bytes.len())));
    }
    // Check the byte order and dim[0] here: the nifti crate guesses the byte order from dim[0] alone.
    let sizeof_hdr = i32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"));
    let big = match sizeof_hdr {
        348 => false,
        n if n.swap_bytes() == 348 => true,
        540 => return Err(Error::at(path, "NIfTI-2 files are not supported; save it as NIfTI-1")),
        n => return Err(Error::at(path, format!("not a NIfTI-1 file (sizeof_hdr is {n}, expected 348)"))),
    };
    let dim0 = [bytes[40], bytes[41]];
    let dim0 = if big { i16::from_be_bytes(dim0) } else { i16::from_le_bytes(dim0) };
    if !(1..=7).contains(&dim0) {
        return Err(Error::at(path, format!("impossible dims: dim[0] = {dim0} (must be 1..=7)")));
    }
    let header = NiftiHeader::from_reader(&bytes[..348]).map_err(|e| Error::at(path, format!("unreadable NIfTI header ({e})")))?;
    match &header.magic {
        b"n+1\0" => Ok(header),
        b"ni1\0" => Err(Error::at(path, "a .hdr/.img pair is not supported; save it as a single .nii or .nii.gz")),
        _ => Err(Error::at(path, "not a NIfTI-1 file (bad magic code; Analyze 7.5 is not supported)")),
    }
}

/// Spatial shape and number of volumes; dims 5..7 must be 1.
fn volume_dims(path: &Path, header: &NiftiHeader) -> Result<([usize; 3], usize)> {
    // NIfTI stores dims as signed 16-bit; the nifti crate reads them unsigned.
    let dim = header.dim.map(|d| d as i16);
    let ndim = dim[0];
    if !(1..=7).contains(&ndim) {
        return Err(Error::at(path, format!("impossible dims: dim[0] = {ndim} (must be 1..=7)")));
    }
    for (k, &d) in dim.iter().enumerate().take(ndim as usize + 1).skip(1) {
        if d <= 0 {
            return Err(Error::at(path, format!("impossible dims: dim[{k}] = {d} (must be positive)")));
        }
    }
    let d = |k: usize| if k <= ndim as usize { dim[k] as usize } else { 1 };
    if ndim < 3 {
        return Err(Error::at(path, format!("a {ndim}-D image: brainseg needs 3-D or 4-D volumes")));
    }
    if (5..=7).any(|k| d(k) != 1) {
        return Err(Error::at(path, format!("a {ndim}-D image: brainseg needs 3-D or 4-D volumes")));
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
            [a0 * a0 + b * b - c * c - d * d, 2.0 * (b * c - a0 * d), 2.0 * (b * d + a0 * c)],
            [2.0 * (b * c + a0 * d), a0 * a0 + c * c - b * b - d * d, 2.0 * (c * d - a0 * b)],
            [2.0 * (b * d - a0 * c), 2.0 * (c * d + a0 * b), a0 * a0 + d * d - c * c - b * b],
        ];
        let qfac = if h.pixdim[0] < 0.0 { -1.0 } else { 1.0 };
        let zoom = [h.pixdim[1] as f64, h.pixdim[2] as f64, qfac * h.pixdim[3] as f64];
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
            format!("cannot write a {shape:?} array with a geometry of canonical shape {expected:?}"),
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
    let canonical_strides = [(canonical[1] * canonical[2]) as isize, canonical[2] as isize, 1];
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
        strides[k] = if o.flip[i] { -canonical_strides[i] } else { canonical_strides[i] };
        if o.flip[i] {
            base += (canonical[i] as isize - 1) * canonical_strides[i];
        }
    }
    let mut encoded = vec![[0u8; S]; n];
    for (volume, bytes) in volumes.iter().zip(out.chunks_mut(n * S)) {
        let standard = volume.as_standard_layout();
        let values = standard.as_slice().expect("standard layout");
        let target = Strided { data: &mut encoded, strides: [shape[1] * shape[0], shape[0], 1], base: 0 };
        gather(target, [shape[2], shape[1], shape[0]], strides, base, |i| encode(values[i]));
        bytes.copy_from_slice(encoded.as_flattened());
    }
    out
}

/// The source header with the datatype, dims and scaling of what is written now.
fn output_header(geometry: &Geometry, dtype: DataType, volumes: usize, cal: (f32, f32)) -> NiftiHeader {
    let mut h = geometry.header.clone();
    let [x, y, z] = geometry.source_shape;
    let four_d = volumes > 1;
    h.dim = [if four_d { 4 } else { 3 }, x as u16, y as u16, z as u16, volumes as u16, 1, 1, 1];
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
    h.dim.iter().for_each(|d| b.extend_from_slice(&d.to_le_bytes()));
    for f in [h.intent_p1, h.intent_p2, h.intent_p3] {
        b.extend_from_slice(&f.to_le_bytes());
    }
    for s in [h.intent_code, h.datatype, h.bitpix, h.slice_start] {
        b.extend_from_slice(&s.to_le_bytes());
    }
    h.pixdim.iter().for_each(|f| b.extend_from_slice(&f.to_le_bytes()));
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
    for f in [h.quatern_b, h.quatern_c, h.quatern_d, h.quatern_x, h.quatern_y, h.quatern_z] {
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
    write_atomic(path, |file| {
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

/// Write through a temp file in the destination folder, then rename over `path`.
pub(crate) fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<()> {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".brainseg-")
        .suffix(".tmp")
        .tempfile_in(folder)
        .map_err(|e| Error::at(folder, format!("cannot create a file here: {e}")))?;
    write(temp.as_file_mut()).map_err(|e| Error::at(path, format!("cannot write: {e}")))?;
    temp.persist(path).map_err(|e| Error::at(path, format!("cannot write: {}", e.error)))?;
    Ok(())
}
