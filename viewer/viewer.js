// brainseg's viewer page: NiiVue (global `niivue`) showing one case's modalities and label maps.
// The page reports on itself for tests: body[data-loaded] counts the volumes once shown,
// body[data-errors] holds any error, document.title ends in "(loaded)" when all is drawn.
(async function () {
  'use strict';
  const body = document.body;
  const config = JSON.parse(document.getElementById('config').textContent);
  const errors = [];
  body.dataset.errors = '';
  const recordError = (message) => {
    errors.push(String(message));
    body.dataset.errors = errors.join(' | ');
  };
  window.addEventListener('error', (e) => recordError(e.message));
  window.addEventListener('unhandledrejection', (e) => recordError(e.reason && e.reason.message || e.reason));
  const consoleError = console.error.bind(console);
  console.error = (...args) => { recordError(args.join(' ')); consoleError(...args); };
  const $ = (id) => document.getElementById(id);
  const text = (tag, content) => { const e = document.createElement(tag); e.textContent = content; return e; };
  $('heading').textContent = config.title;

  // Legend: colour, class name, volume (ml) in each label map.
  const legend = $('legend');
  const head = document.createElement('tr');
  head.append(text('th', ''), text('th', 'class'), ...config.labels.map((l) => text('th', l.name + ' (ml)')));
  legend.append(head);
  config.classes.forEach((c, i) => {
    const row = document.createElement('tr');
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = `rgb(${c.colour.join(',')})`;
    const cell = document.createElement('td');
    cell.append(swatch);
    row.append(cell, text('td', c.name));
    config.labels.forEach((l) => { const td = text('td', l.volumes_ml[i].toFixed(1)); td.className = 'n'; row.append(td); });
    legend.append(row);
  });

  const canvas = $('gl');
  const webgl2 = document.createElement('canvas').getContext('webgl2');
  if (!webgl2 || typeof niivue === 'undefined') {
    canvas.style.display = 'none';
    const fallback = $('fallback');
    fallback.style.display = 'block';
    fallback.append(text('p', (webgl2 ? 'The viewer script did not load' : 'This browser has no WebGL2')
      + ': the interactive viewer cannot run. Three planes through the tumour instead:'));
    fallback.append($('pictures').content.cloneNode(true));
    $('location').textContent = 'no interactive viewer';
    body.dataset.loaded = 'none';
    document.title = config.title + ' (no WebGL2)';
    return;
  }

  const source = (v) => {
    if (v.url) return v.url;
    const binary = atob(v.base64);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return URL.createObjectURL(new Blob([bytes]));
  };
  const nv = new niivue.Niivue({
    backColor: [0, 0, 0, 1],
    crosshairColor: [1, 1, 0, 1],
    show3Dcrosshair: true,
    isColorbar: false,
    isOrientationCube: false,
    logLevel: 'error',
    multiplanarShowRender: niivue.SHOW_RENDER.ALWAYS,
    multiplanarLayout: niivue.MULTIPLANAR_TYPE.GRID,
  });
  await nv.attachToCanvas(canvas);
  const opacity = $('opacity');
  opacity.value = config.opacity;
  const list = config.modalities.map((m, i) => ({ url: source(m), name: m.file, colormap: 'gray', opacity: i === 0 ? 1 : 0 }))
    .concat(config.labels.map((l) => ({ url: source(l), name: l.file, colormap: 'gray', opacity: config.opacity })));
  await nv.loadVolumes(list);
  const byName = (name) => nv.volumes.find((v) => v.name === name);
  const modalities = config.modalities.map((m) => byName(m.file));
  const labels = config.labels.map((l) => byName(l.file));
  const lut = {
    R: [0, ...config.classes.map((c) => c.colour[0])],
    G: [0, ...config.classes.map((c) => c.colour[1])],
    B: [0, ...config.classes.map((c) => c.colour[2])],
    A: [0, ...config.classes.map(() => 255)],
    I: [0, ...config.classes.map((c) => c.value)],
    labels: ['background', ...config.classes.map((c) => c.name)],
  };
  labels.forEach((v) => v.setColormapLabel(lut));

  const shown = config.labels.map(() => true);
  const applyOpacity = () => {
    labels.forEach((v, i) => { v.opacity = shown[i] ? Number(opacity.value) : 0; });
    nv.updateGLVolume();
  };
  opacity.addEventListener('input', applyOpacity);
  config.labels.forEach((l, i) => {
    const label = document.createElement('label');
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.checked = true;
    box.addEventListener('change', () => { shown[i] = box.checked; applyOpacity(); });
    label.append(box, ' ' + l.name);
    $('layers').append(label, document.createElement('br'));
  });
  const select = $('modality');
  config.modalities.forEach((m, i) => select.append(new Option(m.name, String(i))));
  select.addEventListener('change', () => {
    const chosen = modalities[Number(select.value)];
    nv.setVolume(chosen, 0);
    modalities.forEach((v) => { v.opacity = v === chosen ? 1 : 0; });
    nv.updateGLVolume();
  });
  applyOpacity();

  // Cursor: world mm, voxel of the case's files, intensities and labels.
  const className = (value) => value === 0 ? 'background'
    : (config.classes.find((c) => c.value === value) || { name: 'label ' + value }).name;
  const m = config.world_to_voxel;
  nv.onLocationChange = (location) => {
    const [x, y, z] = location.mm;
    const vox = [0, 1, 2].map((r) => Math.round(m[r][0] * x + m[r][1] * y + m[r][2] * z + m[r][3]));
    const value = (volume) => {
      const entry = location.values.find((v) => v.name === volume.name);
      return entry ? entry.value : NaN;
    };
    const lines = [
      `mm     ${[x, y, z].map((v) => v.toFixed(1)).join(', ')}`,
      `voxel  ${vox.join(', ')}`,
      ...config.modalities.map((c, i) => `${c.name.padEnd(6)} ${Math.round(value(modalities[i]) * 100) / 100}`),
      ...config.labels.map((l, i) => `${l.name}: ${className(Math.round(value(labels[i])))}`),
    ];
    $('location').textContent = lines.join('\n');
  };
  if (config.centre_mm) {
    nv.scene.crosshairPos = nv.mm2frac(config.centre_mm);
  }
  nv.drawScene();
  nv.createOnLocationChange();
  body.dataset.loaded = String(nv.volumes.length);
  const rect = canvas.getBoundingClientRect();
  body.dataset.canvas = [rect.left, rect.top, rect.width, rect.height].map(Math.round).join(',');
  document.title = config.title + ' (loaded)';
  // Inside a report's frame: tell the report (it counts the viewers that have drawn).
  if (window.parent !== window) {
    const canvasRect = [rect.left, rect.top, rect.width, rect.height].map(Math.round);
    window.parent.postMessage({ brainsegViewer: 'loaded', volumes: nv.volumes.length, canvas: canvasRect }, '*');
  }
})().catch((e) => {
  const error = String(e && e.message || e);
  document.body.dataset.errors = (document.body.dataset.errors ? document.body.dataset.errors + ' | ' : '') + error;
  document.title += ' (failed)';
  if (window.parent !== window) {
    window.parent.postMessage({ brainsegViewer: 'failed', error }, '*');
  }
});
