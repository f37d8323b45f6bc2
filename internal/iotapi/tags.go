package iotapi

func (h *Handler) tagOperations() []operation {
	return []operation{
		{"TagResource", "POST /tags", h.tagResource},
		{"UntagResource", "POST /untag", h.untagResource},
		{"ListTagsForResource", "GET /tags", h.listTagsForResource},
	}
}

type tagResourceInput struct {
	ResourceArn *string `json:"resourceArn"`
	Tags        []tag   `json:"tags"`
}

func (h *Handler) tagResource(c *call) (any, error) {
	var in tagResourceInput
	if err := c.decodeBody(&in); err != nil {
		return nil, err
	}
	if in.ResourceArn == nil {
		return nil, validation("null", "resourceArn", "Member must not be null")
	}
	if in.Tags == nil {
		return nil, validation("null", "tags", "Member must not be null")
	}
	tags, err := decodeTags(in.Tags, "tags")
	if err != nil {
		return nil, err
	}
	return nil, h.reg.TagResource(c.r.Context(), c.scope, *in.ResourceArn, tags)
}

type untagResourceInput struct {
	ResourceArn *string  `json:"resourceArn"`
	TagKeys     []string `json:"tagKeys"`
}

func (h *Handler) untagResource(c *call) (any, error) {
	var in untagResourceInput
	if err := c.decodeBody(&in); err != nil {
		return nil, err
	}
	if in.ResourceArn == nil {
		return nil, validation("null", "resourceArn", "Member must not be null")
	}
	if in.TagKeys == nil {
		return nil, validation("null", "tagKeys", "Member must not be null")
	}
	for _, k := range in.TagKeys {
		if err := checkTagKey(k, "tagKeys.member"); err != nil {
			return nil, err
		}
	}
	return nil, h.reg.UntagResource(c.r.Context(), c.scope, *in.ResourceArn, in.TagKeys)
}

type listTagsForResourceOutput struct {
	Tags []tag `json:"tags"`
}

func (h *Handler) listTagsForResource(c *call) (any, error) {
	if !c.query.Has("resourceArn") {
		return nil, validation("null", "resourceArn", "Member must not be null")
	}
	// Every tag fits in one answer (at most 50), so no nextToken is ever
	// handed out; one that is sent is not ours.
	if c.query.Get("nextToken") != "" {
		return nil, validation(c.query.Get("nextToken"), "nextToken", "The token was not issued by this service")
	}
	tags, err := h.reg.ListTagsForResource(c.r.Context(), c.scope, c.query.Get("resourceArn"))
	if err != nil {
		return nil, err
	}
	out := listTagsForResourceOutput{Tags: make([]tag, len(tags))}
	for i := range tags {
		out.Tags[i] = tag{Key: &tags[i].Key, Value: &tags[i].Value}
	}
	return out, nil
}
