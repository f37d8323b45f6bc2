package iotapi

import (
	"strconv"
	"time"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/pki"
)

// epoch is a timestamp on the wire: a JSON number of seconds since the epoch
// with millisecond precision, as AWS sends it. The Go SDK refuses strings.
type epoch time.Time

func (t epoch) MarshalJSON() ([]byte, error) {
	ms := time.Time(t).UnixMilli()
	var b []byte
	if ms < 0 {
		// Seconds and milliseconds share the sign: -0.5 s is -0.500.
		b, ms = append(b, '-'), -ms
	}
	b = strconv.AppendInt(b, ms/1000, 10)
	frac := ms % 1000
	b = append(b, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
	return b, nil
}

type validity struct {
	NotBefore epoch `json:"notBefore"`
	NotAfter  epoch `json:"notAfter"`
}

// transferData is empty until transfers exist; AWS sends {} then.
type transferData struct{}

type certificateDescription struct {
	CertificateArn   string       `json:"certificateArn"`
	CertificateID    string       `json:"certificateId"`
	CACertificateID  string       `json:"caCertificateId,omitempty"`
	Status           iot.Status   `json:"status"`
	CertificatePem   string       `json:"certificatePem"`
	OwnedBy          string       `json:"ownedBy"`
	PreviousOwnedBy  string       `json:"previousOwnedBy,omitempty"`
	CreationDate     epoch        `json:"creationDate"`
	LastModifiedDate epoch        `json:"lastModifiedDate"`
	CustomerVersion  int64        `json:"customerVersion"`
	TransferData     transferData `json:"transferData"`
	GenerationID     string       `json:"generationId"`
	Validity         validity     `json:"validity"`
	CertificateMode  iot.Mode     `json:"certificateMode"`
}

func describeCertificate(c *iot.Certificate) certificateDescription {
	return certificateDescription{
		CertificateArn:   c.ARN(),
		CertificateID:    c.ID,
		CACertificateID:  c.CACertificateID,
		Status:           c.Status,
		CertificatePem:   pki.EncodeCertificate(c.DER),
		OwnedBy:          c.OwnedBy,
		PreviousOwnedBy:  c.PreviousOwnedBy,
		CreationDate:     epoch(c.CreatedAt),
		LastModifiedDate: epoch(c.LastModifiedAt),
		CustomerVersion:  c.CustomerVersion,
		GenerationID:     c.GenerationID,
		Validity:         validity{NotBefore: epoch(c.NotBefore), NotAfter: epoch(c.NotAfter)},
		CertificateMode:  c.Mode,
	}
}

type certificateSummary struct {
	CertificateArn  string     `json:"certificateArn"`
	CertificateID   string     `json:"certificateId"`
	Status          iot.Status `json:"status"`
	CertificateMode iot.Mode   `json:"certificateMode"`
	CreationDate    epoch      `json:"creationDate"`
}

type keyPair struct {
	PublicKey  string `json:"PublicKey"`
	PrivateKey string `json:"PrivateKey"`
}
