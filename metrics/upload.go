package metrics

// Kind is what an upload is.
type Kind uint8

// Upload kinds.
const (
	KindNAR         Kind = iota // PUT /nar/<file>
	KindNarInfo                 // PUT /<hash>.narinfo
	KindListing                 // PUT /<hash>.ls
	KindLog                     // PUT /log/<drv>
	KindRealisation             // PUT /realisations/<id>.doi
	KindDebugInfo               // PUT /debuginfo/<id>
	numKinds
)

// kindNames are the kind labels, indexed by Kind.
var kindNames = [numKinds]string{"nar", "narinfo", "listing", "log", "realisation", "debuginfo"}

// String returns the kind's label value.
func (k Kind) String() string {
	if k >= numKinds {
		return "unknown"
	}
	return kindNames[k]
}

// Reason is why an upload was rejected.
type Reason uint8

// Rejection reasons.
const (
	ReasonOther                  Reason = iota // none of the others
	ReasonInvalid                              // malformed: name, syntax, JSON, a body that could not be read
	ReasonHashMismatch                         // a NAR's body does not hash to its name
	ReasonInvalidNAR                           // a NAR that is not a valid (compressed) archive
	ReasonUnsupportedCompression               // a compression or Content-Encoding the cache does not read
	ReasonNARNotUploaded                       // a narinfo naming a NAR that was not uploaded
	ReasonNarInfoMismatch                      // a narinfo whose NarHash or NarSize differ from its NAR's
	ReasonMissingReferences                    // a narinfo or realisation naming paths not in the cache
	ReasonConflict                             // a path already published with other contents
	ReasonTooLarge                             // a body over the size limit
	ReasonUnauthorized                         // no or a wrong push token
	numReasons
)

// reasonNames are the reason labels, indexed by Reason.
var reasonNames = [numReasons]string{
	"other", "invalid", "hash-mismatch", "invalid-nar", "unsupported-compression", "nar-not-uploaded",
	"narinfo-mismatch", "missing-references", "conflict", "too-large", "unauthorized",
}

// String returns the reason's label value.
func (r Reason) String() string {
	if r >= numReasons {
		return reasonNames[ReasonOther]
	}
	return reasonNames[r]
}

// Upload results.
const (
	uploadAccepted = iota
	uploadRejected
	uploadError
	numUploadResults
)

// uploadResults are the result labels of uploads.
var uploadResults = [numUploadResults]string{"accepted", "rejected", "error"}

// UploadAccepted counts an upload the cache stored.
func (m *Metrics) UploadAccepted(k Kind) {
	if m == nil || k >= numKinds {
		return
	}
	m.uploads[k][uploadAccepted].Inc()
}

// UploadRejected counts an upload refused because of what the client
// sent, and why.
func (m *Metrics) UploadRejected(k Kind, r Reason) {
	if m == nil || k >= numKinds {
		return
	}
	m.uploads[k][uploadRejected].Inc()
	m.rejections.WithLabelValues(k.String(), r.String()).Inc()
}

// UploadFailed counts an upload that failed for another reason than its
// contents: a server-side error, or a client that went away.
func (m *Metrics) UploadFailed(k Kind) {
	if m == nil || k >= numKinds {
		return
	}
	m.uploads[k][uploadError].Inc()
}
