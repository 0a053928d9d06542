//! The provider sandbox: fake ElevenLabs, Fal, Kling and Sync Labs servers (`devatar fakes`).
