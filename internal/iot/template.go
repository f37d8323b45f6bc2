package iot

import "time"

// TypeProvisioningTemplate is the ARN resource type of provisioning
// templates.
const TypeProvisioningTemplate = "provisioningtemplate"

// TemplateType is what a provisioning template provisions: devices that
// ask over MQTT with a claim certificate, or devices whose certificate a
// registered CA signed, on their first connection.
type TemplateType string

// The template types of the model.
const (
	FleetProvisioning TemplateType = "FLEET_PROVISIONING"
	JITP              TemplateType = "JITP"
)

// PreProvisioningHook is the Lambda function a fleet-provisioning template
// asks before it provisions a device.
type PreProvisioningHook struct {
	TargetARN      string
	PayloadVersion string
}

// ProvisioningTemplate is a named provisioning template with up to five
// versions of its body, one of which, the default, is the one in force.
type ProvisioningTemplate struct {
	Scope       Scope
	Name        string
	Description string
	Type        TemplateType
	// Enabled is false until asked for, as at AWS: a disabled template
	// provisions nothing.
	Enabled             bool
	ProvisioningRoleARN string
	// Hook is nil when the template has none.
	Hook             *PreProvisioningHook
	DefaultVersionID int64
	// Body is the default version's body; listings leave it empty.
	Body       string
	CreatedAt  time.Time
	ModifiedAt time.Time
}

// ARN is the template's ARN.
func (t *ProvisioningTemplate) ARN() string { return t.Scope.ARN(TypeProvisioningTemplate, t.Name) }

// ProvisioningTemplateVersion is one version of a template's body. Version
// IDs count up from 1 and are never reused.
type ProvisioningTemplateVersion struct {
	Scope        Scope
	TemplateName string
	ID           int64
	Body         string
	IsDefault    bool
	CreatedAt    time.Time
}

// ValidTemplateName reports whether name is a template name as the model
// allows: 1 to 36 of [0-9A-Za-z_-].
func ValidTemplateName(name string) bool {
	return len(name) >= 1 && len(name) <= 36 && only(name, "_-")
}
