//! Times the three passes on the seed U-Net's largest convolutions (patch 160x160x16, batch 1).
//! `cargo run --release -p brainseg-conv --example layer_bench`
use brainseg_conv::Conv3x3x3;
use std::time::Instant;

fn main() {
    let layers = [
        ("encoders.0.conv2", 32, 64, [160, 160, 16]),
        ("encoders.1.conv2", 64, 128, [80, 80, 8]),
        ("encoders.2.conv2", 128, 256, [40, 40, 4]),
        ("decoders.0.conv1", 768, 256, [40, 40, 4]),
        ("decoders.1.conv1", 384, 128, [80, 80, 8]),
        ("decoders.2.conv1", 192, 64, [160, 160, 16]),
        ("decoders.2.conv2", 64, 64, [160, 160, 16]),
    ];
    println!("{} thread(s)", rayon::current_num_threads());
    println!(
        "{:<18} {:>6} {:>15} {:>15} {:>15}",
        "layer", "GFLOP", "forward s", "input grad s", "weight grad s"
    );
    let mut totals = [0.0f64; 3];
    for (name, cin, cout, size) in layers {
        let conv = Conv3x3x3 {
            batch: 1,
            channels_in: cin,
            channels_out: cout,
            size,
        };
        let voxels: usize = size.iter().product();
        let gflop = 2.0 * 27.0 * (cin * cout * voxels) as f64 / 1e9;
        let x: Vec<f32> = (0..cin * voxels).map(|i| (i % 7) as f32 * 0.1).collect();
        let w: Vec<f32> = (0..cout * cin * 27)
            .map(|i| (i % 5) as f32 * 0.01)
            .collect();
        let g: Vec<f32> = (0..cout * voxels).map(|i| (i % 3) as f32 * 0.1).collect();
        let bias = vec![0.0f32; cout];
        let time = |f: &dyn Fn() -> usize| {
            f();
            let start = Instant::now();
            std::hint::black_box(f());
            start.elapsed().as_secs_f64()
        };
        let t = [
            time(&|| conv.forward(&x, &w, &bias).len()),
            time(&|| conv.input_grad(&g, &w).len()),
            time(&|| conv.weight_grad(&x, &g).len()),
        ];
        for i in 0..3 {
            totals[i] += t[i];
        }
        let cell = |s: f64| format!("{s:.3} [{:.0}]", gflop / s);
        println!(
            "{name:<18} {gflop:>6.1} {:>15} {:>15} {:>15}",
            cell(t[0]),
            cell(t[1]),
            cell(t[2])
        );
    }
    println!(
        "{:<18} {:>6} {:>15.3} {:>15.3} {:>15.3}",
        "total", "", totals[0], totals[1], totals[2]
    );
}
