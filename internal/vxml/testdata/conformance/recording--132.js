// recordingProblem checks a <record> result against the format asked for: kind is 'raw'
// (headerless samples) or 'wav', tag the WAVE format tag (1 linear, 6 A-law, 7 mu-law) and
// bytes the bytes per sample. It returns '' when the audio, its size and its duration (8 kHz
// mono) agree, otherwise what is wrong.
function recordingProblem(rec, shadow, kind, tag, bytes) {
  if (!(rec instanceof ArrayBuffer)) return 'not an ArrayBuffer';
  var b = new Uint8Array(rec);
  if (shadow.size !== b.length) return 'size ' + shadow.size + ' for ' + b.length + ' bytes';
  if (!(shadow.duration > 0)) return 'duration ' + shadow.duration;
  var riff = b.length >= 12 && String.fromCharCode(b[0], b[1], b[2], b[3]) === 'RIFF' &&
    String.fromCharCode(b[8], b[9], b[10], b[11]) === 'WAVE';
  if (kind === 'raw') {
    if (riff) return 'a WAV header in raw audio';
    if (b.length !== shadow.duration * 8 * bytes) return b.length + ' bytes for ' + shadow.duration + ' ms';
    return '';
  }
  if (!riff) return 'no RIFF/WAVE header';
  var dv = new DataView(rec);
  var off = 12, fmt = -1, channels = 0, rate = 0, bits = 0, data = -1;
  while (off + 8 <= b.length) {
    var id = String.fromCharCode(b[off], b[off + 1], b[off + 2], b[off + 3]);
    var len = dv.getUint32(off + 4, true);
    if (id === 'fmt ') {
      fmt = dv.getUint16(off + 8, true);
      channels = dv.getUint16(off + 10, true);
      rate = dv.getUint32(off + 12, true);
      bits = dv.getUint16(off + 22, true);
    }
    if (id === 'data') { data = len; break; }
    off += 8 + len + (len & 1);
  }
  if (fmt !== tag || channels !== 1 || rate !== 8000 || bits !== 8 * bytes)
    return 'format ' + fmt + ', ' + channels + ' channel(s), ' + rate + ' Hz, ' + bits + ' bits';
  if (data !== shadow.duration * 8 * bytes) return 'data of ' + data + ' bytes for ' + shadow.duration + ' ms';
  if (off + 8 + data + (data & 1) !== b.length) return 'the data chunk does not end the file';
  return '';
}
