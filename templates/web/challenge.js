// Solves the sign-up form's proof-of-work challenge (broadcast/web/challenge.py) in the
// browser, so people with JavaScript never wait. First-party, no dependencies; without it (or
// without Web Crypto) the form still works: the server then asks for a short wait instead.
(function () {
  "use strict";
  var form = document.querySelector("form[data-challenge]");
  if (!form || !window.crypto || !window.crypto.subtle || !window.TextEncoder) return;
  var challenge = form.querySelector("input[name=challenge]").value;
  var proof = form.querySelector("input[name=proof]");
  var bits = parseInt(challenge.split(".")[2], 10);
  var encoder = new TextEncoder();
  var sending = false;

  function zeroBits(buffer) {
    var bytes = new Uint8Array(buffer);
    var n = 0;
    for (var i = 0; i < bytes.length; i++) {
      if (bytes[i] !== 0) return n + Math.clz32(bytes[i]) - 24;
      n += 8;
    }
    return n;
  }

  async function solve() {
    for (var start = 0; ; start += 256) {
      var batch = [];
      for (var k = start; k < start + 256; k++) {
        batch.push(crypto.subtle.digest("SHA-256", encoder.encode(challenge + ":" + k)));
      }
      var digests = await Promise.all(batch);
      for (var j = 0; j < digests.length; j++) {
        if (zeroBits(digests[j]) >= bits) return start + j;
      }
    }
  }

  var solved = solve().then(function (n) { proof.value = String(n); });
  form.addEventListener("submit", function (event) {
    if (proof.value || sending) return;
    event.preventDefault();
    sending = true;
    solved.then(function () { form.submit(); });
  });
})();
