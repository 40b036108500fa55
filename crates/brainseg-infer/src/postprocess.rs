//! Removing small 3-D connected components (26-connectivity) from an MSD label map.
use brainseg_transforms::Targets;
use ndarray::Array3;

/// What [`remove_small_components`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    pub components: usize,
    pub voxels: usize,
}

/// Drop connected components smaller than `min_voxels`.
///
/// - [`Targets::Classes`]: components of each class 1, 2, 3 separately; their voxels become background.
/// - [`Targets::Regions`]: components of WT = {1,2,3}, then TC = {2,3}, then ET = {3}; a small
///   component is demoted to the enclosing region (WT -> background, TC -> edema 1, ET -> 2), so
///   the regions stay nested.
pub fn remove_small_components(
    labels: &mut Array3<u8>,
    min_voxels: usize,
    scope: Targets,
) -> Removed {
    if !labels.is_standard_layout() {
        *labels = labels.as_standard_layout().into_owned();
    }
    let mut removed = Removed::default();
    for level in 1..=3u8 {
        let (inside, replacement): (fn(u8, u8) -> bool, u8) = match scope {
            Targets::Classes => (|v, level| v == level, 0),
            Targets::Regions => (|v, level| v >= level && v <= 3, level - 1),
        };
        // mapv of a standard-layout array is standard layout.
        let mask = labels.mapv(|v| inside(v, level));
        for component in connected_components(&mask) {
            if component.len() < min_voxels {
                removed.components += 1;
                removed.voxels += component.len();
                let flat = labels.as_slice_mut().expect("standard layout");
                for index in component {
                    flat[index] = replacement;
                }
            }
        }
    }
    removed
}

/// nnU-Net's BraTS post-processing: a predicted enhancing tumour (MSD 3) of fewer than
/// `min_voxels` voxels in the whole case is taken for a false positive and becomes necrosis /
/// non-enhancing tumour (MSD 2), so the tumour core is kept. Returns the voxels relabelled.
/// Cases without enhancing tumour are common (low-grade gliomas) and score ET Dice 0 for any
/// false-positive voxel, which is why the threshold pays off; it is chosen by cross-validation.
pub fn enhancing_to_necrosis_below(labels: &mut Array3<u8>, min_voxels: usize) -> usize {
    let enhancing = labels.iter().filter(|&&v| v == 3).count();
    if enhancing == 0 || enhancing >= min_voxels {
        return 0;
    }
    labels.mapv_inplace(|v| if v == 3 { 2 } else { v });
    enhancing
}

/// Keeps only the largest 26-connected component of the whole tumour (every non-zero label) and
/// sets the rest to background; returns the voxels removed. Stray false positives far from the
/// tumour are what make HD95 large; nnU-Net keeps this step when cross-validation says it helps
/// (on brainseg's 16-case CV it did: see models/MODEL_CARD.md). Ties keep the first in scan order.
pub fn keep_largest_tumour(labels: &mut Array3<u8>) -> usize {
    if !labels.is_standard_layout() {
        *labels = labels.as_standard_layout().into_owned();
    }
    let components = connected_components(&labels.mapv(|v| v != 0));
    let Some(largest) =
        (0..components.len()).max_by_key(|&i| (components[i].len(), usize::MAX - i))
    else {
        return 0;
    };
    let flat = labels.as_slice_mut().expect("standard layout");
    let mut removed = 0;
    for (i, component) in components.iter().enumerate() {
        if i != largest {
            removed += component.len();
            for &index in component {
                flat[index] = 0;
            }
        }
    }
    removed
}

/// 26-connected components of a mask, as lists of flat (row-major) indices.
fn connected_components(mask: &Array3<bool>) -> Vec<Vec<usize>> {
    let (nx, ny, nz) = mask.dim();
    let mask = mask.as_slice().expect("masks are built in standard layout");
    let mut seen = vec![false; mask.len()];
    let mut components = Vec::new();
    let mut stack = Vec::new();
    for start in 0..mask.len() {
        if !mask[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let mut component = Vec::new();
        while let Some(index) = stack.pop() {
            component.push(index);
            let (x, y, z) = (index / (ny * nz), (index / nz) % ny, index % nz);
            for nx_ in x.saturating_sub(1)..=(x + 1).min(nx - 1) {
                for ny_ in y.saturating_sub(1)..=(y + 1).min(ny - 1) {
                    for nz_ in z.saturating_sub(1)..=(z + 1).min(nz - 1) {
                        let neighbour = (nx_ * ny + ny_) * nz + nz_;
                        if mask[neighbour] && !seen[neighbour] {
                            seen[neighbour] = true;
                            stack.push(neighbour);
                        }
                    }
                }
            }
        }
        components.push(component);
    }
    components
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagonal_neighbours_are_connected() {
        let mut mask = Array3::from_elem((3, 3, 3), false);
        mask[[0, 0, 0]] = true;
        // Each of these touches (1,1,1) only at a corner: offsets (1,1,1), (1,1,-1), (-1,1,1).
        mask[[1, 1, 1]] = true;
        mask[[2, 2, 0]] = true;
        mask[[0, 2, 2]] = true;
        let mut sizes: Vec<usize> = connected_components(&mask).iter().map(Vec::len).collect();
        sizes.sort();
        assert_eq!(sizes, vec![4]);
        mask[[1, 1, 1]] = false;
        assert_eq!(connected_components(&mask).len(), 3);
    }

    /// 10 x 10 x 10, labels: a 3x3x3 cube of class 1 with a 1-voxel class-3 centre; an isolated
    /// 2-voxel class-1 blob; a 5-voxel class-2 line touching nothing.
    fn hand_built() -> Array3<u8> {
        let mut labels = Array3::<u8>::zeros((10, 10, 10));
        for i in 1..4 {
            for j in 1..4 {
                for k in 1..4 {
                    labels[[i, j, k]] = 1;
                }
            }
        }
        labels[[2, 2, 2]] = 3;
        labels[[8, 8, 8]] = 1;
        labels[[8, 8, 9]] = 1;
        for i in 0..5 {
            labels[[i, 8, 0]] = 2;
        }
        labels
    }

    #[test]
    fn only_the_largest_tumour_component_stays_whatever_its_labels() {
        let mut labels = hand_built();
        // Whole-tumour components: the cube with its centre (27 voxels), the blob (2), the line (5).
        let removed = keep_largest_tumour(&mut labels);
        assert_eq!(removed, 7);
        assert_eq!(labels.iter().filter(|&&v| v != 0).count(), 27);
        assert_eq!(
            (labels[[2, 2, 2]], labels[[1, 1, 1]]),
            (3, 1),
            "the cube keeps its labels"
        );
        assert_eq!((labels[[8, 8, 8]], labels[[0, 8, 0]]), (0, 0));
        let mut empty = Array3::<u8>::zeros((4, 4, 4));
        assert_eq!(keep_largest_tumour(&mut empty), 0);
    }

    #[test]
    fn per_class_removal() {
        let mut labels = hand_built();
        let removed = remove_small_components(&mut labels, 3, Targets::Classes);
        // Class 1: cube shell (26 voxels) kept, blob of 2 removed. Class 2: 5 kept. Class 3: 1 removed.
        assert_eq!(
            removed,
            Removed {
                components: 2,
                voxels: 3
            }
        );
        assert_eq!(labels[[8, 8, 8]], 0);
        assert_eq!(labels[[8, 8, 9]], 0);
        assert_eq!(labels[[2, 2, 2]], 0, "class-3 singleton becomes background");
        assert_eq!(labels[[1, 1, 1]], 1);
        assert_eq!(labels[[4, 8, 0]], 2);
    }

    #[test]
    fn per_region_removal_demotes_to_the_enclosing_region() {
        let mut labels = hand_built();
        let removed = remove_small_components(&mut labels, 3, Targets::Regions);
        // WT: cube (27) and line (5) kept, blob (2) removed. TC: centre (1) -> 1; line (5) kept.
        // ET: the centre is already edema by then, so nothing more.
        assert_eq!(
            removed,
            Removed {
                components: 2,
                voxels: 3
            }
        );
        assert_eq!(labels[[8, 8, 8]], 0);
        assert_eq!(labels[[2, 2, 2]], 1, "small TC inside WT becomes edema");
        assert_eq!(labels[[0, 8, 0]], 2);

        let mut labels = hand_built();
        let removed = remove_small_components(&mut labels, 6, Targets::Regions);
        // WT: blob (2) and line (5) removed; TC: centre (1) -> edema.
        assert_eq!(
            removed,
            Removed {
                components: 3,
                voxels: 8
            }
        );
        assert_eq!(labels.iter().filter(|&&v| v != 0).count(), 27);
        assert!(labels.iter().all(|&v| v <= 1));
    }

    #[test]
    fn small_enhancing_tumour_becomes_necrosis_and_large_stays() {
        // 3 enhancing voxels, 2 edema, 1 core.
        let mut labels = Array3::from_shape_vec((6, 1, 1), vec![3, 3, 3, 1, 1, 2]).unwrap();
        let kept = labels.clone();
        assert_eq!(
            enhancing_to_necrosis_below(&mut labels, 3),
            0,
            "3 is not below 3"
        );
        assert_eq!(labels, kept);
        assert_eq!(enhancing_to_necrosis_below(&mut labels, 4), 3);
        assert_eq!(labels.into_raw_vec_and_offset().0, vec![2, 2, 2, 1, 1, 2]);
        let mut none = Array3::from_shape_vec((2, 1, 1), vec![1, 0]).unwrap();
        assert_eq!(enhancing_to_necrosis_below(&mut none, 100), 0);
    }
}
