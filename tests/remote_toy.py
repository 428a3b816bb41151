"""The source of a tiny masked LM that a checkpoint ships as its own code (`auto_map`), for the tests
of remote code: formatted with the class name and the config class it uses."""

TOY_MODEL = '''
class {name}(PreTrainedModel):
    config_class = {config}

    def __init__(self, config):
        super().__init__(config)
        self.emb = torch.nn.Embedding(config.vocab_size, config.hidden)
        self.head = torch.nn.Linear(config.hidden, config.vocab_size)
        self.post_init()

    def get_input_embeddings(self):
        return self.emb

    def forward(self, input_ids=None, inputs_embeds=None, attention_mask=None, **kwargs):
        x = self.emb(input_ids) if inputs_embeds is None else inputs_embeds
        return MaskedLMOutput(logits=self.head(x))
'''
