package atcmd

// payloadLengthForTest exposes payloadLength to the external tests.
var PayloadLengthForTest = payloadLength
